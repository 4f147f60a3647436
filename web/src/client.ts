/**
 * A typed client for the tokenledger API, for any web app (copy this file, and chat.ts for the
 * openai SDK, or import them).
 *
 * - `call` is plain fetch with a fresh Firebase ID token on every request, throwing
 *   `TokenledgerError` with a typed `code` (and `retryAfterS` from `Retry-After`).
 * - Types for the answers: `UsageCost` (a chat answer's `usage`), `BudgetStatus`, models, ...
 *
 * The month and day readers at the end come from rollups.ts (Firebase JS SDK); the rest has no
 * dependencies. Pass whatever returns the current user's ID token
 * (`() => auth.currentUser!.getIdToken()` with the Firebase JS SDK: it refreshes the token
 * when it is near expiry).
 */

/** Every `error.code` the API answers with (see the README's error table). */
export type ErrorCode =
  | "invalid_json" | "invalid_request" | "max_tokens_too_large" | "model_not_found" | "model_not_allowed"
  | "upstream_bad_request" | "invalid_budget" | "invalid_month" | "invalid_limit" | "invalid_format"
  | "invalid_granularity" | "invalid_user_id" | "invalid_page_token" | "invalid_clock" | "bad_request"
  | "unauthenticated" | "invalid_token" | "token_expired" | "token_revoked"
  | "budget_exceeded"
  | "forbidden" | "content_flagged"
  | "not_found" | "method_not_allowed" | "payload_too_large" | "unsupported_media_type"
  | "rate_limited" | "free_quota_exceeded"
  | "internal_error" | "upstream_error" | "upstream_unreachable" | "upstream_unavailable" | "upstream_timeout"
  | "auth_unavailable" | "budget_unavailable"
  | "credits_exhausted" | "invalid_grant" | "idempotency_key_reused" | "credits_unavailable"
  | "model_not_in_plan" | "invalid_plan" | "plan_not_found" | "plan_changed" | "invalid_query";

/** `usage` of a chat answer or of the final stream chunk: OpenRouter's, with the cost charged. */
export interface UsageCost {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** USD charged for the call (OpenRouter's `usage.cost`). */
  cost?: number;
  is_byok?: boolean;
  prompt_tokens_details?: { cached_tokens?: number; cache_write_tokens?: number };
  completion_tokens_details?: { reasoning_tokens?: number };
  cost_details?: { upstream_inference_cost?: number | null };
}

/** Where the caller stands this month (`GET /v1/budget`, and `budget` beside every chat answer). */
export interface BudgetStatus {
  month: string;
  spent: number;
  spent_nanos: number;
  reserved: number;
  reserved_nanos: number;
  monthly_budget: number | null;
  remaining: number | null;
  percentage_used: number | null;
  alert_thresholds: number[];
  enforce: boolean;
  free_daily_requests: number | null;
  free_requests_today: number | null;
  source: string;
  /** The plan in force (`plans/{planId}`), and where each field came from. */
  plan?: string | null;
  sources?: Record<string, "user" | "plan" | "default">;
  downgrade_to?: string | null;
  downgrade_at?: number | null;
  /** GET /v1/budget: the month passed `downgrade_at`, paid calls go to `downgrade_to`. */
  downgrading?: boolean;
  /** On a chat answer: this call was served on `downgrade_to`. */
  downgraded?: boolean;
}

export interface ModelInfo {
  id: string;
  name?: string;
  is_free: boolean;
  pricing: { prompt: string; completion: string; [kind: string]: string };
  context_length?: number;
}

export interface ModelList {
  catalog: { source: string; fetched_at?: string };
  data: ModelInfo[];
}

/** `POST /v1/estimate`: the range a call can cost before it is sent (null: price unknown). */
export interface Estimate {
  model: string;
  is_free: boolean;
  variable_price: boolean;
  prompt_tokens_estimate: number;
  max_completion_tokens: number;
  min_cost: number | null;
  max_cost: number | null;
  min_cost_nanos: number | null;
  max_cost_nanos: number | null;
  currency: "USD";
  note: string;
}

export interface Breakdown { calls: number; tokens: number; cost: number; cost_nanos: number }

export interface UsageSummary {
  user_id: string;
  from: string;
  to: string;
  granularity: "day" | "month";
  totals: Record<string, number>;
  by_model: Record<string, Breakdown>;
  by_feature: Record<string, Breakdown>;
  by_provider: Record<string, Breakdown>;
  series: Array<Record<string, number | string>>;
}

export interface Alert {
  id: string;
  user_id: string;
  month: string;
  threshold: number;
  alert_type: "budget_threshold" | "budget_exceeded" | "budget_forecast" | "usage_spike" | "credits_low" | string;
  /** credits_low: the wallet's balance when it was written (USD). */
  balance?: number;
  current_cost: number;
  monthly_budget: number;
  percentage_used: number;
  source: "realtime" | "scheduled";
  created_at: string | null;
  /** budget_forecast */
  projected?: number;
  projected_day?: string;
  method?: string;
  /** usage_spike */
  day?: string;
  day_cost?: number;
  median_day_cost?: number;
}

export interface Page<T> { data: T[]; next_page_token: string | null }

/** One line of a wallet's history (grants, adjustments, payments, a past month's spending). */
export interface CreditEntry {
  id: string;
  type: "grant" | "adjustment" | "payment" | "spending";
  amount: number;
  amount_nanos: number;
  reason?: string;
  source?: string;
  payment_id?: string;
  created_at: string | null;
}

/** `GET /v1/credits` (and `/v1/admin/credits/{uid}`): the prepaid wallet and its history, newest first. */
export interface Wallet {
  user_id: string;
  has_wallet: boolean;
  balance: number;
  balance_nanos: number;
  /** What calls in progress (and instances' leases) hold of the balance. */
  held: number;
  held_nanos: number;
  /** Kept by API instances for your next calls: back to the balance when they close. */
  leased_nanos: number;
  available_nanos: number;
  month: string;
  spent_this_month_nanos: number;
  low_balance_alert: number;
  history: CreditEntry[];
  next_page_token: string | null;
}

export class TokenledgerError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    /** Seconds to wait before retrying, from `Retry-After` (429, 503). */
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
    this.name = "TokenledgerError";
  }
}

export interface ClientOptions {
  /** The API's root: "/api" behind the Hosting rewrite, or the function's URL cross-origin. */
  baseUrl: string;
  /** Returns the signed-in user's current ID token (refreshed when near expiry). */
  getIdToken: () => Promise<string>;
}

export interface Tokenledger {
  /** The API's absolute root URL. */
  root: string;
  call<T>(path: string, init?: { method?: string; body?: unknown }): Promise<T>;
  /** Like `call`, for the raw Response (CSV export, reading headers). */
  fetchRaw(path: string, init?: { method?: string; body?: unknown }): Promise<Response>;
  models(): Promise<ModelList>;
  estimate(body: { model: string; messages: Array<{ role: string; content: string }>; max_tokens?: number }): Promise<Estimate>;
  budget(): Promise<BudgetStatus>;
  alerts(): Promise<Page<Alert>>;
  usage(from: string, to: string, granularity?: "day" | "month"): Promise<UsageSummary>;
  credits(pageToken?: string): Promise<Wallet>;
}

function retryAfter(headers: Headers): number | null {
  const raw = headers.get("Retry-After");
  const n = raw === null ? NaN : Number(raw);
  return Number.isFinite(n) ? n : null;
}

/** The API's error body as a TokenledgerError (also for the openai SDK's APIError). */
export async function toError(response: Response): Promise<TokenledgerError> {
  let code: ErrorCode = "internal_error";
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    code = body?.error?.code ?? code;
    message = body?.error?.message ?? message;
  } catch {
    /* not JSON: keep the status line */
  }
  return new TokenledgerError(response.status, code, message, retryAfter(response.headers));
}

export function createTokenledger({ baseUrl, getIdToken }: ClientOptions): Tokenledger {
  // "/api" means this page's origin (the Hosting rewrite); the openai SDK needs it absolute.
  const root = new URL(baseUrl, globalThis.location?.href).toString().replace(/\/+$/, "");
  async function once(path: string, init: { method?: string; body?: unknown }): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${await getIdToken()}` };
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(`${root}${path}`, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  }

  async function fetchRaw(path: string, init: { method?: string; body?: unknown } = {}): Promise<Response> {
    let response = await once(path, init);
    // The API's own errors are JSON. A 5xx without it came from what stands in front (a proxy,
    // a cold start): a request that changes nothing is worth one more try.
    const safe = (init.method ?? (init.body === undefined ? "GET" : "POST")) === "GET" || path === "/v1/estimate";
    if (safe && response.status >= 500 && !(response.headers.get("Content-Type") ?? "").includes("json")) {
      response = await once(path, init);
    }
    if (!response.ok) throw await toError(response);
    return response;
  }

  async function call<T>(path: string, init?: { method?: string; body?: unknown }): Promise<T> {
    return (await fetchRaw(path, init)).json() as Promise<T>;
  }

  return {
    root,
    call,
    fetchRaw,
    models: () => call<ModelList>("/v1/models"),
    estimate: (body) => call<Estimate>("/v1/estimate", { body }),
    budget: () => call<BudgetStatus>("/v1/budget"),
    alerts: () => call<Page<Alert>>("/v1/alerts?limit=50"),
    usage: (from, to, granularity = "day") =>
      call<UsageSummary>(`/v1/usage?from=${from}&to=${to}&granularity=${granularity}`),
    credits: (pageToken) =>
      call<Wallet>(`/v1/credits?limit=20${pageToken ? `&page_token=${encodeURIComponent(pageToken)}` : ""}`),
  };
}

/**
 * Reading a user's own month or day straight from Firestore (the rules allow
 * `user_usage/{own uid}/**`): a period is its base document plus any shards `{period}~{k}`,
 * summed. These helpers (web/src/rollups.ts, the one module that reads rollups, with the Firebase
 * JS SDK as its only dependency) do it; copy them with this file. See README, "Reading your own data".
 */
export {
  addRollup, periodQuery, readDay, readMonth, readPeriod, sumPeriod, toRollup, watchMonth, type MonthView, type Rollup,
} from "./rollups";
