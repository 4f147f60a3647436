/** "My usage": the month's cost against the budget, daily chart, breakdowns, alerts, CSV. Live. */
import type { Chart } from "chart.js";
import type { BudgetStatus } from "../client";
import { drawGauge } from "../gauge";
import type { Page } from "../context";
import { count, currentMonth, el, monthSpan, usdFromNanos } from "../format";
import { sentence } from "../messages";
import { alertSentence } from "../alertkinds";
import { watchBudget, watchMonth, type Breakdown, type MonthView } from "../rollups";
import { creditsSection } from "./credits";

function breakdownTable(id: string, caption: string, head: string, rows: Record<string, Breakdown>): HTMLTableElement {
  const body = el("tbody");
  const entries = Object.entries(rows).sort((a, b) => b[1].cost_nanos - a[1].cost_nanos || b[1].calls - a[1].calls);
  for (const [name, r] of entries) {
    body.append(el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: count(r.calls) }),
      el("td", { text: count(r.tokens) }), el("td", { text: usdFromNanos(r.cost_nanos), "data-nanos": String(r.cost_nanos) })));
  }
  if (!entries.length) body.append(el("tr", {}, el("td", { colspan: "4", text: "No calls this month." })));
  return el("table", { id },
    el("caption", { text: caption }),
    el("thead", {}, el("tr", {}, ...[head, "Calls", "Tokens", "Cost"].map((h) => el("th", { scope: "col", text: h })))),
    body);
}

export const usagePage: Page = (root, { services, user, api }, param) => {
  const initial = /^\d{4}-(0[1-9]|1[0-2])$/.test(param) ? param : currentMonth();
  const monthInput = el("input", { type: "month", id: "month", value: initial, required: "" });
  const csv = el("button", { type: "button", id: "download-csv", text: "Download CSV" });
  const status = el("p", { id: "usage-status", role: "status" });
  const gaugeText = el("p", { id: "gauge-text" });
  const gauge = el("div", { id: "gauge" });
  const planText = el("p", { id: "plan-text" });
  const cards = el("dl", { id: "usage-totals", class: "cards" });
  const canvas = el("canvas", { id: "daily-chart", role: "img" });
  const tables = el("div", { class: "tables" });
  const alerts = el("ul", { id: "alerts" });
  const credits = creditsSection(api);
  root.replaceChildren(
    el("h1", { text: "My usage" }),
    el("div", { class: "toolbar" }, el("label", { for: "month", text: "Month" }), monthInput, csv),
    status,
    el("section", { "aria-labelledby": "budget-h" }, el("h2", { id: "budget-h", text: "Budget" }), gaugeText, planText, gauge),
    el("section", { "aria-labelledby": "totals-h" }, el("h2", { id: "totals-h", text: "This month" }), cards),
    el("section", { "aria-labelledby": "chart-h" }, el("h2", { id: "chart-h", text: "Daily cost by model" }),
      el("div", { class: "chart-box" }, canvas)),
    tables,
    el("section", { "aria-labelledby": "alerts-h" }, el("h2", { id: "alerts-h", text: "Alerts" }), alerts),
    credits.section,
  );

  let chart: Chart | null = null;
  // Chart.js is not needed for the numbers: loaded beside them, drawn as soon as it is here.
  const charts = import("../charts");
  let alive = true;
  let view: MonthView | null = null;
  let budget: BudgetStatus | null = null;
  let stop: () => void = () => {};

  function renderGauge() {
    if (!view) return;
    const limit = budget?.monthly_budget ?? null;
    const spent = view.total.cost_nanos;
    gauge.dataset.budget = limit === null ? "" : String(limit);
    gauge.dataset.spentNanos = String(spent);
    gaugeText.textContent = limit === null
      ? `${usdFromNanos(spent)} spent in ${view.month}. No monthly budget is set.`
      : `${usdFromNanos(spent)} of ${usdFromNanos(Math.round(limit * 1e9))} spent in ${view.month}` +
        ` (${((spent / (limit * 1e9)) * 100).toFixed(1)}%).`;
    drawGauge(gauge, spent, limit, budget?.alert_thresholds ?? []);
    planText.textContent = planSentence(budget);
  }

  function render(v: MonthView) {
    if (!root.dataset.ready) performance.mark("rollups-received");
    view = v;
    const t = v.total;
    const card = (id: string, label: string, value: string, nanos?: number) => [
      el("dt", { text: label }), el("dd", { id, text: value, ...(nanos === undefined ? {} : { "data-nanos": String(nanos) }) })];
    cards.replaceChildren(
      ...card("total-cost", "Cost", usdFromNanos(t.cost_nanos), t.cost_nanos),
      ...card("total-calls", "Calls", count(t.calls)),
      ...card("free-tokens", "Free tokens", count(t.free_tokens)),
      ...card("paid-tokens", "Paid tokens", count(t.paid_tokens)),
      ...card("free-calls", "Free / paid calls", `${count(t.free_calls)} / ${count(t.paid_calls)}`),
    );
    tables.replaceChildren(
      breakdownTable("by-model", "By model", "Model", t.by_model),
      breakdownTable("by-feature", "By feature", "Feature", t.by_feature),
      breakdownTable("by-provider", "By provider", "Provider", t.by_provider),
    );
    renderGauge();
    void charts.then(({ drawDailyChart }) => {
      if (!alive || view !== v) return; // a newer snapshot draws instead
      chart = drawDailyChart(canvas, v.month, v.days, chart);
      if (!performance.getEntriesByName("usage-chart").length) performance.mark("usage-chart");
    });
    // Documents behind this view: the month rollup and one per day with calls (never the rows).
    root.dataset.documents = String(1 + Object.keys(v.days).length);
    if (!root.dataset.ready) {
      root.dataset.ready = "true";
      // After the browser has painted the numbers (the bench reads this mark).
      requestAnimationFrame(() => requestAnimationFrame(() => { performance.mark("usage-painted"); painted(); }));
    }
  }

  // The budget and alerts come from the API (through the functions): asked once the numbers are
  // painted, so they do not compete with the rollup listeners for a cold page's first paint.
  let painted!: () => void;
  let firstPaint = new Promise<void>((resolve) => { painted = resolve; });

  async function loadBudgetAndAlerts(month: string) {
    await firstPaint;
    try {
      const [b, a] = await Promise.all([api.budget(), api.alerts(), credits.load()]);
      budget = b;
      renderGauge();
      const mine = a.data.filter((x) => x.month === month);
      alerts.replaceChildren(...(mine.length ? mine.map((x) => el("li", { text: alertSentence(x) }))
        : [el("li", { text: "No alerts this month." })]));
    } catch (err) {
      status.textContent = sentence(err);
    }
  }

  function show(month: string) {
    stop();
    delete root.dataset.ready;
    firstPaint = new Promise<void>((resolve) => { painted = resolve; });
    view = null;
    status.textContent = "";
    const stopRollups = watchMonth(services.db, user.uid, month, render, (err) => { status.textContent = err.message; });
    const stopBudget = watchBudget(services.db, user.uid, () => void loadBudgetAndAlerts(month),
      (err) => { status.textContent = err.message; });
    stop = () => { stopRollups(); stopBudget(); };
  }

  monthInput.addEventListener("change", () => {
    if (!monthInput.value) return;
    history.replaceState(null, "", `#/usage/${monthInput.value}`); // a link to this month
    show(monthInput.value);
  });
  csv.addEventListener("click", async () => {
    const { from, to } = monthSpan(monthInput.value);
    try {
      const response = await api.fetchRaw(`/v1/usage/export?from=${from}&to=${to}&format=csv`);
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: `usage-${monthInput.value}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      status.textContent = sentence(err);
    }
  });
  show(monthInput.value);
  return () => { alive = false; stop(); chart?.destroy(); };
};

/** The user's plan, and — past its downgrade point — what happens to their paid calls. */
export function planSentence(b: BudgetStatus | null): string {
  if (!b) return "";
  const plan = b.plan ? `You are on the ${b.plan} plan.` : "";
  const down = b.downgrading && b.downgrade_to
    ? ` You have used ${Math.round((b.downgrade_at ?? 1) * 100)}% or more of your budget, so your paid calls are now ` +
      `served on ${b.downgrade_to}.`
    : "";
  return (plan + down).trim();
}
