/**
 * Every Firestore read of the web app, in one place: a user's month and day rollups (live), and
 * the reconcile job's drift status for admins. If the rollup layout changes (e.g. shard
 * subdocuments summed on read), this module is the one to change; pages only see `MonthRollup`.
 *
 * Rules: a user reads `user_usage/{own uid}/**`; an admin (custom claim) reads everything.
 */
import {
  collection, doc, documentId, getDoc, getDocs, onSnapshot, query, where, type Firestore, type Query,
  type QuerySnapshot, type Unsubscribe,
} from "firebase/firestore";

export interface Breakdown { calls: number; tokens: number; cost_nanos: number }

/** One user's counters for a month or a day (zeros when nothing was recorded). */
export interface Rollup {
  calls: number;
  free_calls: number;
  paid_calls: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  free_tokens: number;
  paid_tokens: number;
  cost_nanos: number;
  by_model: Record<string, Breakdown>;
  by_feature: Record<string, Breakdown>;
  by_provider: Record<string, Breakdown>;
}

export interface MonthView {
  month: string;
  total: Rollup;
  /** Day rollups of the month by "YYYY-MM-DD" (days without calls are absent). */
  days: Record<string, Rollup>;
}

const COUNTERS = ["calls", "free_calls", "paid_calls", "prompt_tokens", "completion_tokens", "total_tokens",
  "free_tokens", "paid_tokens", "cost_nanos"] as const;
const MAPS = ["by_model", "by_feature", "by_provider"] as const;

function int(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function breakdowns(raw: unknown): Record<string, Breakdown> {
  const out: Record<string, Breakdown> = {};
  for (const [key, value] of Object.entries((raw ?? {}) as Record<string, Record<string, unknown>>)) {
    out[key] = { calls: int(value?.calls), tokens: int(value?.tokens), cost_nanos: int(value?.cost_nanos) };
  }
  return out;
}

export function toRollup(data: Record<string, unknown> | undefined): Rollup {
  const r = {} as Rollup;
  for (const name of COUNTERS) r[name] = int(data?.[name]);
  for (const name of MAPS) r[name] = breakdowns(data?.[name]);
  return r;
}

/** Adds `from` into `into`, counter by counter and breakdown key by key. */
export function addRollup(into: Rollup, from: Rollup): Rollup {
  for (const name of COUNTERS) into[name] += from[name];
  for (const name of MAPS) {
    for (const [key, value] of Object.entries(from[name])) {
      const sum = into[name][key] ?? { calls: 0, tokens: 0, cost_nanos: 0 };
      into[name][key] = { calls: sum.calls + value.calls, tokens: sum.tokens + value.tokens,
        cost_nanos: sum.cost_nanos + value.cost_nanos };
    }
  }
  return into;
}

/**
 * The documents of one user's month (`kind` "months", `period` "YYYY-MM") or day ("days",
 * "YYYY-MM-DD"): the base document `{period}` and the shards `{period}~{k}` of a user who called
 * faster than about once a second, by id. A period is the SUM of these documents: read the base
 * alone (`getDoc`) and a hot user's month shows only part of it until the server folds the
 * shards back (README, "Reading your own data").
 */
export function periodQuery(db: Firestore, uid: string, kind: "months" | "days", period: string): Query {
  return query(collection(db, "user_usage", uid, kind), where(documentId(), ">=", period),
    where(documentId(), "<=", `${period}~~`));
}

/** One period from a snapshot of `periodQuery`: its documents summed. */
export function sumPeriod(snap: QuerySnapshot, period: string): Rollup {
  const total = toRollup(undefined);
  snap.forEach((d) => { if (d.id.split("~")[0] === period) addRollup(total, toRollup(d.data())); });
  return total;
}

/** THE read of a user's month or day, once: every counter summed over the base and its shards. */
export async function readPeriod(db: Firestore, uid: string, kind: "months" | "days", period: string): Promise<Rollup> {
  return sumPeriod(await getDocs(periodQuery(db, uid, kind, period)), period);
}

/** `readPeriod` of a month ("YYYY-MM"). */
export function readMonth(db: Firestore, uid: string, month: string): Promise<Rollup> {
  return readPeriod(db, uid, "months", month);
}

/** `readPeriod` of a day ("YYYY-MM-DD"). */
export function readDay(db: Firestore, uid: string, day: string): Promise<Rollup> {
  return readPeriod(db, uid, "days", day);
}

/**
 * Calls `onChange` with the month's rollups now and after every recorded call, until the
 * returned function is called. Two listeners: the month's documents and its day documents.
 * A period is the sum of its documents: the base `{period}` and, for a user calling faster than
 * about once a second, shards `{period}~{k}` with the same `month` / `day` fields (see
 * docs/analytics.md, "Hot users").
 */
export function watchMonth(db: Firestore, uid: string, month: string, onChange: (view: MonthView) => void,
                           onError: (err: Error) => void): Unsubscribe {
  const view: MonthView = { month, total: toRollup(undefined), days: {} };
  let haveMonth = false;
  let haveDays = false;
  const emit = () => { if (haveMonth && haveDays) onChange({ ...view, days: { ...view.days } }); };
  const user = doc(db, "user_usage", uid);
  const stopMonth = onSnapshot(periodQuery(db, uid, "months", month), (snap) => {
    view.total = sumPeriod(snap, month);
    haveMonth = true;
    emit();
  }, onError);
  const stopDays = onSnapshot(query(collection(user, "days"), where("month", "==", month)), (snap) => {
    view.days = {};
    snap.forEach((d) => {
      const day = typeof d.get("day") === "string" ? (d.get("day") as string) : d.id.split("~")[0];
      view.days[day] = addRollup(view.days[day] ?? toRollup(undefined), toRollup(d.data()));
    });
    haveDays = true;
    emit();
  }, onError);
  return () => { stopMonth(); stopDays(); };
}

/** The reconcile job's verdict for a month (`reconciliation/{YYYY-MM}`), admins only. */
export interface DriftStatus {
  month: string;
  checked: boolean;
  ledger_total_nanos: number | null;
  openrouter_total_nanos: number | null;
  drift_nanos: number | null;
  above_tolerance: boolean;
  checked_at: string | null;
  /** `admin_alerts/ledger_drift_{YYYY-MM}` exists. */
  alerted: boolean;
}

export async function readDrift(db: Firestore, month: string): Promise<DriftStatus> {
  const [rec, alert] = await Promise.all([
    getDoc(doc(db, "reconciliation", month)),
    getDoc(doc(db, "admin_alerts", `ledger_drift_${month}`)),
  ]);
  const d = rec.data() ?? {};
  const nanos = (k: string) => (typeof d[k] === "number" ? (d[k] as number) : null);
  const at = d.checked_at as { toDate?: () => Date } | string | undefined;
  return {
    month,
    checked: rec.exists(),
    ledger_total_nanos: nanos("ledger_total_nanos"),
    openrouter_total_nanos: nanos("openrouter_total_nanos"),
    drift_nanos: nanos("drift_nanos"),
    above_tolerance: d.above_tolerance === true,
    checked_at: typeof at === "string" ? at : at?.toDate ? at.toDate().toISOString() : null,
    alerted: alert.exists(),
  };
}

/** Calls `onChange` whenever the user's budget document changes (an admin set it), and once now. */
export function watchBudget(db: Firestore, uid: string, onChange: () => void, onError: (err: Error) => void): Unsubscribe {
  return onSnapshot(doc(db, "user_budgets", uid), () => onChange(), onError);
}
