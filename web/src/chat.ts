/**
 * Chat through tokenledger with the official openai SDK (its own module: the SDK is the largest
 * dependency, so pages that do not chat never load it).
 *
 * `apiKey` is a function: the SDK calls it before every request, so each call carries a fresh
 * Firebase ID token. Streaming works as with OpenAI (`stream: true`); the last chunk carries
 * `usage` with `cost` (typed `UsageCost`).
 */
import OpenAI from "openai";
import { TokenledgerError, type ClientOptions, type ErrorCode } from "./client";

export function createChat({ baseUrl, getIdToken }: ClientOptions): OpenAI {
  return new OpenAI({
    baseURL: `${new URL(baseUrl, globalThis.location?.href).toString().replace(/\/+$/, "")}/v1`,
    apiKey: getIdToken, // called before every request: always a fresh token
    dangerouslyAllowBrowser: true, // the "key" is the user's own short-lived ID token
    maxRetries: 0, // a 402/429 is an answer for the person, not something to retry blindly
  });
}

/** An error thrown by the openai SDK, as a TokenledgerError when it came from the API. */
export function fromSdkError(err: unknown): unknown {
  if (err instanceof OpenAI.APIError && typeof err.status === "number") {
    const body = err.error as { code?: ErrorCode; message?: string } | undefined;
    const raw = err.headers instanceof Headers ? err.headers.get("Retry-After") : null;
    const retry = raw === null ? NaN : Number(raw);
    return new TokenledgerError(err.status, body?.code ?? "internal_error", body?.message ?? err.message,
      Number.isFinite(retry) ? retry : null);
  }
  return err;
}
