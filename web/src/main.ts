/** The app shell: sign-in, navigation (Admin only for the claim), and one page at a time. */
import {
  createUserWithEmailAndPassword, onIdTokenChanged, signInWithEmailAndPassword, signOut, type User,
} from "firebase/auth";
import { createTokenledger } from "./client";
import type { Page, PageContext } from "./context";
import { startFirebase, type Services } from "./firebase";
import { el } from "./format";
import { usagePage } from "./pages/usage";

// "My usage" is the landing page and ships in the main bundle; the others (the playground
// carries the openai SDK) are loaded when first opened.
const ROUTES: Record<string, { title: string; load: () => Promise<Page>; admin?: boolean }> = {
  usage: { title: "My usage", load: async () => usagePage },
  playground: { title: "Playground", load: async () => (await import("./pages/playground")).playgroundPage },
  admin: { title: "Admin", load: async () => (await import("./pages/admin")).adminPage, admin: true },
};

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;

function authMessage(err: unknown): string {
  const code = (err as { code?: string }).code ?? "";
  if (code.includes("invalid-credential") || code.includes("wrong-password") || code.includes("user-not-found")) {
    return "That email and password do not match an account.";
  }
  if (code.includes("email-already-in-use")) return "An account with this email exists: sign in instead.";
  if (code.includes("weak-password")) return "Choose a password of at least 6 characters.";
  if (code.includes("invalid-email")) return "That does not look like an email address.";
  return "Signing in failed. Check your connection and try again.";
}

function signInView(services: Services) {
  nav.replaceChildren();
  const email = el("input", { id: "email", type: "email", autocomplete: "username", required: "" });
  const password = el("input", { id: "password", type: "password", autocomplete: "current-password", required: "" });
  const problem = el("p", { id: "signin-problem", role: "alert" });
  const create = el("button", { type: "button", id: "create-account", class: "secondary", text: "Create account" });
  const form = el("form", { id: "signin-form" },
    el("div", { class: "field" }, el("label", { for: "email", text: "Email" }), email),
    el("div", { class: "field" }, el("label", { for: "password", text: "Password" }), password),
    el("div", { class: "buttons" }, el("button", { type: "submit", id: "signin", text: "Sign in" }), create), problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    try { await signInWithEmailAndPassword(services.auth, email.value, password.value); }
    catch (err) { problem.textContent = authMessage(err); }
  });
  create.addEventListener("click", async () => {
    problem.textContent = "";
    if (!form.reportValidity()) return;
    try { await createUserWithEmailAndPassword(services.auth, email.value, password.value); }
    catch (err) { problem.textContent = authMessage(err); }
  });
  main.replaceChildren(el("h1", { text: "Sign in" }),
    el("p", { text: services.emulated
      ? "Local emulators: any email and password of 6+ characters; create the account first."
      : "Sign in with the account you use for this app." }), form);
  document.title = "Sign in · tokenledger";
}

function shell(services: Services, user: User, isAdmin: boolean) {
  const ctx: PageContext = {
    services, user, isAdmin,
    // Same origin: Hosting rewrites /api/** to the `api` function.
    api: createTokenledger({ baseUrl: "/api", getIdToken: () => user.getIdToken() }),
  };
  let stop: () => void = () => {};
  let routed = 0;
  const links = Object.entries(ROUTES).filter(([, r]) => !r.admin || isAdmin)
    .map(([name, r]) => el("a", { href: `#/${name}`, id: `nav-${name}`, text: r.title }));
  const out = el("button", { type: "button", id: "signout", class: "secondary", text: "Sign out" });
  out.addEventListener("click", () => void signOut(services.auth));
  nav.replaceChildren(el("ul", {}, ...links.map((a) => el("li", {}, a))),
    el("span", { id: "who", text: user.email ?? user.uid }), out);

  function route() {
    const [first, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
    const name = first || "usage";
    const r = ROUTES[name] ?? ROUTES.usage;
    stop();
    main.replaceChildren();
    delete main.dataset.ready;
    for (const a of links) a.removeAttribute("aria-current");
    document.getElementById(`nav-${name}`)?.setAttribute("aria-current", "page");
    document.title = `${r.title} · tokenledger`;
    const seq = ++routed;
    let stopped = false;
    stop = () => { stopped = true; };
    r.load().then((page) => {
      if (seq !== routed || stopped) return;
      stop = page(main, ctx, rest.join("/"));
    }).catch(() => {
      main.replaceChildren(el("p", { role: "alert", text: "This page could not be loaded. Reload to try again." }));
    });
  }
  window.onhashchange = route;
  route();
  return () => { stop(); window.onhashchange = null; };
}

async function boot() {
  performance.mark("app-start");
  let services: Services;
  try {
    services = await startFirebase();
  } catch (err) {
    main.replaceChildren(el("h1", { text: "Not configured" }), el("p", { text: String((err as Error).message) }));
    return;
  }
  let close: () => void = () => {};
  let shownFor: string | null | undefined;
  onIdTokenChanged(services.auth, async (user) => {
    const key = user ? `${user.uid}` : null;
    if (key === shownFor) return; // a token refresh: the pages ask for fresh tokens themselves
    shownFor = key;
    close();
    close = () => {};
    if (!user) { signInView(services); return; }
    performance.mark("auth-ready");
    const claims = (await user.getIdTokenResult()).claims;
    close = shell(services, user, claims.admin === true);
  });
}

void boot();
