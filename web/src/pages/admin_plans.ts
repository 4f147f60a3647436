/** Admin page parts for plans (issue 17): the plans (list, create, edit, delete), finding a user
 * by email (Firebase Auth, through the API), and the emails of the top users. */
import type { Tokenledger } from "../client";
import { el, usdFromFloat } from "../format";
import { sentence } from "../messages";

export interface Plan {
  plan_id: string; monthly_budget?: number | null; enforce?: boolean; allowed_models?: string[];
  downgrade_to?: string | null; downgrade_at?: number; free_daily_requests?: number | null;
}
export interface AdminUser { user_id: string; email: string | null; plan_claim: string | null; disabled: boolean; admin: boolean }

function field(id: string, label: string, input: HTMLElement): HTMLElement {
  return el("div", { class: "field" }, el("label", { for: id, text: label }), input);
}

/** Emails of these users, by uid (one API call for up to 100). */
export async function emailsOf(api: Tokenledger, uids: string[]): Promise<Record<string, string>> {
  if (!uids.length) return {};
  const found = await api.call<{ data: AdminUser[] }>(`/v1/admin/users?uids=${uids.map(encodeURIComponent).join(",")}`);
  return Object.fromEntries(found.data.filter((u) => u.email).map((u) => [u.user_id, u.email as string]));
}

/** "Find a user": an email -> the user's uid and plan; `onPick` gets the uid (the budget form). */
export function findUserSection(api: Tokenledger, onPick: (uid: string) => void): HTMLElement {
  const email = el("input", { id: "find-email", type: "email", required: "", autocomplete: "off" });
  const result = el("p", { id: "find-result", role: "status" });
  const form = el("form", { id: "find-form" }, field("find-email", "Email", email),
    el("button", { type: "submit", id: "find-go", text: "Find user" }), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.textContent = "";
    try {
      const found = await api.call<{ data: AdminUser[] }>(`/v1/admin/users?email=${encodeURIComponent(email.value.trim())}`);
      const u = found.data[0];
      if (!u) { result.textContent = `No user has the email ${email.value.trim()}.`; return; }
      result.dataset.uid = u.user_id;
      result.textContent = `${u.email} is user ${u.user_id}, on ${u.plan_claim ? `the ${u.plan_claim} plan` : "the default plan"}` +
        `${u.disabled ? " (disabled)" : ""}.`;
      onPick(u.user_id);
    } catch (err) {
      result.textContent = sentence(err);
    }
  });
  return el("section", { "aria-labelledby": "find-h" }, el("h2", { id: "find-h", text: "Find a user" }), form);
}

function planRow(p: Plan): string[] {
  return [p.plan_id,
    p.monthly_budget === undefined ? "default" : p.monthly_budget === null ? "none" : usdFromFloat(p.monthly_budget),
    p.enforce === undefined ? "default" : p.enforce ? "yes" : "no",
    p.allowed_models?.length ? p.allowed_models.join(", ") : "all",
    p.downgrade_to ? `${p.downgrade_to} at ${Math.round((p.downgrade_at ?? 1) * 100)}%` : "no"];
}

/** "Plans": the table (each row with Edit and Delete) and the form that creates or replaces one. */
export function plansSection(api: Tokenledger): { section: HTMLElement; load: () => Promise<void> } {
  const list = el("div", { id: "plans" });
  const result = el("p", { id: "plan-result", role: "status" });
  const id = el("input", { id: "plan-id", required: "", pattern: "[a-z0-9_-]{1,64}", autocomplete: "off" });
  const budget = el("input", { id: "plan-budget", type: "number", min: "0", step: "any" });
  const enforce = el("input", { id: "plan-enforce", type: "checkbox" });
  const models = el("input", { id: "plan-models", autocomplete: "off" });
  const downTo = el("input", { id: "plan-downgrade-to", autocomplete: "off" });
  const downAt = el("input", { id: "plan-downgrade-at", type: "number", min: "0.01", max: "1", step: "any" });
  const form = el("form", { id: "plan-form" },
    field("plan-id", "Plan id", id), field("plan-budget", "Budget of the plan per month (USD)", budget),
    el("div", { class: "field inline" }, enforce, el("label", { for: "plan-enforce", text: "Enforce the budget of the plan" })),
    field("plan-models", "Allowed models (comma-separated ids or globs; empty: all)", models),
    field("plan-downgrade-to", "Downgrade to (model id; empty: no downgrade)", downTo),
    field("plan-downgrade-at", "Downgrade at (share of the budget, default 1)", downAt),
    el("button", { type: "submit", id: "plan-save", text: "Save plan" }), result);

  function edit(p: Plan) {
    id.value = p.plan_id;
    budget.value = p.monthly_budget == null ? "" : String(p.monthly_budget);
    enforce.checked = Boolean(p.enforce);
    models.value = (p.allowed_models ?? []).join(", ");
    downTo.value = p.downgrade_to ?? "";
    downAt.value = p.downgrade_to && p.downgrade_at !== undefined ? String(p.downgrade_at) : "";
    id.focus();
  }

  async function load() {
    const plans = (await api.call<{ data: Plan[] }>("/v1/admin/plans")).data;
    const body = el("tbody");
    for (const p of plans) {
      const r = planRow(p);
      const editBtn = el("button", { type: "button", class: "plan-edit", "aria-label": `Edit plan ${p.plan_id}`, text: "Edit" });
      const delBtn = el("button", { type: "button", class: "plan-delete", "aria-label": `Delete plan ${p.plan_id}`, text: "Delete" });
      editBtn.addEventListener("click", () => edit(p));
      delBtn.addEventListener("click", async () => {
        try {
          await api.call(`/v1/admin/plans/${encodeURIComponent(p.plan_id)}`, { method: "DELETE" });
          await load();
          result.textContent = `Plan ${p.plan_id} deleted.`;
        } catch (err) { result.textContent = sentence(err); }
      });
      body.append(el("tr", { "data-plan": p.plan_id }, el("th", { scope: "row", text: r[0] }),
        ...r.slice(1).map((c) => el("td", { text: c })), el("td", {}, editBtn, " ", delBtn)));
    }
    if (!plans.length) body.append(el("tr", {}, el("td", { colspan: "6", text: "No plans: every user has the configured defaults." })));
    list.replaceChildren(el("table", { id: "plans-table" }, el("caption", { text: "Plans" }),
      el("thead", {}, el("tr", {}, ...["Plan", "Budget", "Enforced", "Models", "Downgrade", ""].map((h) => el("th", { scope: "col", text: h })))),
      body));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.textContent = "";
    const body: Record<string, unknown> = { enforce: enforce.checked };
    if (budget.value !== "") body.monthly_budget = Number(budget.value);
    const allowed = models.value.split(",").map((m) => m.trim()).filter(Boolean);
    if (allowed.length) body.allowed_models = allowed;
    if (downTo.value.trim()) body.downgrade_to = downTo.value.trim();
    if (downTo.value.trim() && downAt.value !== "") body.downgrade_at = Number(downAt.value);
    try {
      await api.call(`/v1/admin/plans/${encodeURIComponent(id.value.trim())}`, { method: "PUT", body });
      const saved = id.value.trim();
      await load();
      result.textContent = `Plan ${saved} saved.`;
    } catch (err) {
      result.textContent = sentence(err);
    }
  });
  const section = el("section", { "aria-labelledby": "plans-h" }, el("h2", { id: "plans-h", text: "Plans" }), list, form);
  return { section, load };
}
