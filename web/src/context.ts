import type { User } from "firebase/auth";
import type { Tokenledger } from "./client";
import type { Services } from "./firebase";

/** What every page gets: the signed-in user, the API client and Firebase. */
export interface PageContext {
  services: Services;
  user: User;
  isAdmin: boolean;
  api: Tokenledger;
}

/** A page fills `root` and returns a function that stops its listeners. `param` is the rest of
 * the route (`#/usage/2026-10` -> "2026-10"). */
export type Page = (root: HTMLElement, ctx: PageContext, param: string) => () => void;
