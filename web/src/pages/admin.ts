/** Admin (custom claim `admin`): month totals, top users, budgets, alerts by month, drift. */
import type { Alert, Page as ApiPage } from "../client";
import type { Page } from "../context";
import { count, currentMonth, el, usdFromFloat, usdFromNanos } from "../format";
import { sentence } from "../messages";
import { readDrift } from "../rollups";
import { ledgerHealthSection } from "../ledgerHealth";
import { adminCreditsSection } from "./credits";
import { emailsOf, findUserSection, plansSection } from "./admin_plans";
import { alertKind } from "../alertkinds";
import { undeliveredSection } from "./admin_deliveries";

interface TopUsers { month: string; users: Array<{ rank: number; user_id: string; calls: number; total_tokens: number; cost_nanos: number }> }
interface Totals { month: string; totals: Record<string, number>; active_users: number }

function table(id: string, caption: string, head: string[], rows: string[][]): HTMLTableElement {
  const body = el("tbody");
  for (const r of rows) body.append(el("tr", {}, el("th", { scope: "row", text: r[0] }), ...r.slice(1).map((c) => el("td", { text: c }))));
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: String(head.length), text: "Nothing this month." })));
  return el("table", { id }, el("caption", { text: caption }),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))), body);
}

export const adminPage: Page = (root, { services, api, isAdmin }) => {
  if (!isAdmin) {
    root.replaceChildren(el("h1", { text: "Not available" }),
      el("p", { id: "not-admin", text: "This page is for administrators." }));
    return () => {};
  }
  const month = el("input", { type: "month", id: "admin-month", value: currentMonth(), required: "" });
  const status = el("p", { id: "admin-status", role: "status" });
  const totals = el("div", { id: "admin-totals" });
  const top = el("div", { id: "admin-top" });
  const alerts = el("div", { id: "admin-alerts" });
  const drift = el("p", { id: "drift" });
  const undelivered = undeliveredSection(api);
  const uid = el("input", { id: "budget-uid", required: "", autocomplete: "off" });
  const amount = el("input", { id: "budget-amount", type: "number", min: "0", step: "any", required: "" });
  const enforce = el("input", { id: "budget-enforce", type: "checkbox" });
  const budgetResult = el("p", { id: "budget-result", role: "status" });
  const budgetForm = el("form", { id: "budget-form" },
    el("div", { class: "field" }, el("label", { for: "budget-uid", text: "User id" }), uid),
    el("div", { class: "field" }, el("label", { for: "budget-amount", text: "Monthly budget (USD)" }), amount),
    el("div", { class: "field inline" }, enforce, el("label", { for: "budget-enforce", text: "Refuse calls over the budget" })),
    el("button", { type: "submit", id: "budget-save", text: "Set budget" }), budgetResult);
  const plans = plansSection(api);
  const finder = findUserSection(api, (found) => { uid.value = found; });
  root.replaceChildren(
    el("h1", { text: "Admin" }),
    el("div", { class: "toolbar" }, el("label", { for: "admin-month", text: "Month" }), month),
    status,
    el("section", { "aria-labelledby": "totals-h" }, el("h2", { id: "totals-h", text: "Month totals" }), totals),
    el("section", { "aria-labelledby": "top-h" }, el("h2", { id: "top-h", text: "Top users" }), top),
    finder,
    el("section", { "aria-labelledby": "set-h" }, el("h2", { id: "set-h", text: "Set a user's budget" }), budgetForm),
    adminCreditsSection(api),
    plans.section,
    el("section", { "aria-labelledby": "alerts-h" }, el("h2", { id: "alerts-h", text: "Alerts" }), alerts),
    el("section", { "aria-labelledby": "drift-h" }, el("h2", { id: "drift-h", text: "Ledger drift" }), drift),
    undelivered.section,
  );
  const healing = ledgerHealthSection(api);
  root.append(healing.section);
  void healing.load();

  let seq = 0;
  async function load() {
    const m = month.value;
    const mine = ++seq;
    status.textContent = "";
    try {
      const [t, u, a, d] = await Promise.all([
        api.call<Totals>(`/v1/admin/totals?month=${m}`),
        api.call<TopUsers>(`/v1/admin/top-users?month=${m}&limit=10`),
        api.call<ApiPage<Alert>>(`/v1/admin/alerts?month=${m}&limit=50`),
        readDrift(services.db, m),
        plans.load(),
      ]);
      // Emails beside the uids (Firebase Auth, through the API); the table stands without them.
      const emails = await emailsOf(api, u.users.map((x) => x.user_id)).catch(() => ({} as Record<string, string>));
      if (mine !== seq) return;
      const tt = t.totals;
      totals.replaceChildren(table("totals-table", `Totals for ${m}`, ["Measure", "Value"], [
        ["Cost", usdFromNanos(tt.cost_nanos ?? 0)], ["Calls", count(tt.calls ?? 0)],
        ["Free / paid calls", `${count(tt.free_calls ?? 0)} / ${count(tt.paid_calls ?? 0)}`],
        ["Tokens", count(tt.total_tokens ?? 0)], ["Active users", count(t.active_users)],
      ]));
      top.replaceChildren(table("top-users", `Top users of ${m} by cost`, ["Rank", "User", "Email", "Calls", "Tokens", "Cost"],
        u.users.map((x) => [String(x.rank), x.user_id, emails[x.user_id] ?? "", count(x.calls), count(x.total_tokens),
          usdFromNanos(x.cost_nanos)])));
      alerts.replaceChildren(table("alerts-table", `Budget alerts of ${m}`, ["User", "Kind", "Spent", "Budget", "Source"],
        a.data.map((x) => x.alert_type === "credits_low"
          ? [x.user_id, "credits low", usdFromFloat(x.balance ?? 0), `below ${usdFromFloat(x.threshold)}`, x.source]
          : [x.user_id, alertKind(x), usdFromFloat(x.current_cost), usdFromFloat(x.monthly_budget), x.source])));
      drift.dataset.state = !d.checked ? "unchecked" : d.above_tolerance ? "drift" : "ok";
      drift.textContent = !d.checked
        ? `Not reconciled yet for ${m}.`
        : `${d.above_tolerance ? "Drift above tolerance" : "Within tolerance"}: ledger ${usdFromNanos(d.ledger_total_nanos ?? 0)}, ` +
          `OpenRouter ${usdFromNanos(d.openrouter_total_nanos ?? 0)}, difference ${usdFromNanos(d.drift_nanos ?? 0)}` +
          (d.checked_at ? ` (checked ${d.checked_at.slice(0, 16).replace("T", " ")} UTC)` : "") +
          (d.alerted ? ". An admin alert is open." : ".");
      await undelivered.load(m);
      root.dataset.ready = "true";
    } catch (err) {
      status.textContent = sentence(err);
    }
  }

  budgetForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    budgetResult.textContent = "";
    try {
      await api.call(`/v1/admin/budgets/${encodeURIComponent(uid.value.trim())}`, {
        method: "PUT", body: { monthly_budget: Number(amount.value), enforce: enforce.checked },
      });
      budgetResult.textContent = `Budget of ${uid.value.trim()} set to ${usdFromFloat(Number(amount.value))}` +
        `${enforce.checked ? " (enforced)" : ""}.`;
    } catch (err) {
      budgetResult.textContent = sentence(err);
    }
  });
  month.addEventListener("change", () => { if (month.value) void load(); });
  void load();
  return () => { seq++; };
};
