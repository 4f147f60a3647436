/** How an alert of any kind reads in a list: thresholds, forecasts, spikes, and kinds added later. */
import type { Alert } from "./client";
import { usdFromNanos } from "./format";

const usd = (value: number | undefined) => usdFromNanos(Math.round((value ?? 0) * 1e9));

/** Short label for a table cell. */
export function alertKind(a: Alert): string {
  if (a.alert_type === "budget_exceeded") return "exceeded";
  if (a.alert_type === "budget_threshold") return `${Math.round(a.threshold * 100)}%`;
  if (a.alert_type === "budget_forecast") return `forecast ${usd(a.projected)} (budget reached ${a.projected_day ?? "?"})`;
  if (a.alert_type === "usage_spike") return `spike on ${a.day ?? "?"}: ${usd(a.day_cost)} vs median ${usd(a.median_day_cost)}`;
  if (a.alert_type === "credits_low") return "credits low";
  return a.alert_type;
}

/** The sentence on the user's page. */
export function alertSentence(a: Alert): string {
  const when = a.created_at ? ` (${a.created_at.slice(0, 16).replace("T", " ")} UTC)` : "";
  if (a.alert_type === "budget_forecast") {
    return `On course to spend ${usd(a.projected)} this month, over your ${usd(a.monthly_budget)} budget ` +
      `(reached around ${a.projected_day ?? "?"}); ${usd(a.current_cost)} spent so far${when}`;
  }
  if (a.alert_type === "usage_spike") {
    return `Spending jumped on ${a.day ?? "?"}: ${usd(a.day_cost)}, against a usual ${usd(a.median_day_cost)} a day${when}`;
  }
  if (a.alert_type === "credits_low") {
    return `Credit balance low: ${usd(a.balance)} (alert below ${usd(a.threshold)})${when}`;
  }
  const head = a.alert_type === "budget_exceeded" ? "Budget exceeded" : `Crossed ${Math.round(a.threshold * 100)}%`;
  return `${head}: ${usd(a.current_cost)} of ${usd(a.monthly_budget)}${when}`;
}
