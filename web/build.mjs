// Builds the app into web/dist (Firebase Hosting's public folder): static files copied, the
// TypeScript bundled by esbuild into ES modules split by page. Bundle names carry a content
// hash, so Hosting can let browsers cache them for good (firebase.json); index.html names them.
// Nothing is fetched at run time.
import { build } from "esbuild";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");

// npm 11 may skip install scripts; @firebase/util's postinstall writes a module it imports.
const util = join(here, "node_modules/@firebase/util");
if (!existsSync(join(util, "dist/postinstall.mjs"))) {
  execFileSync(process.execPath, [join(util, "postinstall.js")], { cwd: util, stdio: "inherit" });
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "assets"), { recursive: true });
cpSync(join(here, "static"), dist, { recursive: true });
const result = await build({
  entryPoints: { app: join(here, "src/main.ts") },
  outdir: join(dist, "assets"),
  entryNames: "[name]-[hash]",
  chunkNames: "chunk-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  target: ["es2022"],
  minify: true,
  legalComments: "linked",
  metafile: true,
  logLevel: "warning",
});
const outputs = Object.entries(result.metafile.outputs);
const [entry] = outputs.find(([, o]) => o.entryPoint?.endsWith("src/main.ts"));
const entryUrl = "/" + relative(dist, join(process.cwd(), entry)).split("\\").join("/");
// Modules the first page needs at once: fetched in parallel with the entry, not after it.
const eager = outputs.find(([file]) => file === entry)[1].imports
  .filter((i) => i.kind === "import-statement").map((i) => "/assets/" + basename(i.path));
const index = join(dist, "index.html");
writeFileSync(index, readFileSync(index, "utf8").replace(
  '<script type="module" src="/app.js"></script>',
  [...eager.map((u) => `<link rel="modulepreload" href="${u}">`), `<script type="module" src="${entryUrl}"></script>`].join("\n  "),
));
console.log(`web: built ${dist} (entry ${entryUrl})`);
