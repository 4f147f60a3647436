// Builds the app into web/dist (Firebase Hosting's public folder): static files copied, the
// TypeScript bundled by esbuild into one ES module. Nothing is fetched at run time.
import { build } from "esbuild";
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");

// npm 11 may skip install scripts; @firebase/util's postinstall writes a module it imports.
const util = join(here, "node_modules/@firebase/util");
if (!existsSync(join(util, "dist/postinstall.mjs"))) {
  execFileSync(process.execPath, [join(util, "postinstall.js")], { cwd: util, stdio: "inherit" });
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
cpSync(join(here, "static"), dist, { recursive: true });
await build({
  entryPoints: [join(here, "src/main.ts")],
  outfile: join(dist, "app.js"),
  bundle: true,
  format: "esm",
  target: ["es2022"],
  minify: true,
  sourcemap: false,
  legalComments: "linked",
  logLevel: "warning",
});
console.log(`web: built ${dist}`);
