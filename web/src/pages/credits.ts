/** Prepaid credits: the user's wallet on "My usage", and the admin's grant form and wallet view. */
import type { Tokenledger, Wallet } from "../client";
import { el, usdFromNanos } from "../format";
import { sentence } from "../messages";

const KIND: Record<string, string> = { grant: "Grant", adjustment: "Adjustment", payment: "Payment", spending: "Spending" };

/** Balance, held and history (newest first, "More" pages on) into `box`. */
function renderWallet(box: HTMLElement, wallet: Wallet, more: (() => void) | null, prefix: string): void {
  const cards = el("dl", { id: `${prefix}-cards`, class: "cards" },
    el("div", {}, el("dt", { text: "Balance" }), el("dd", { id: `${prefix}-balance`, "data-nanos": String(wallet.balance_nanos),
      text: usdFromNanos(wallet.balance_nanos) })),
    el("div", {}, el("dt", { text: "Held by calls in progress" }), el("dd", { id: `${prefix}-held`,
      "data-nanos": String(wallet.held_nanos), text: usdFromNanos(wallet.held_nanos) })),
    el("div", {}, el("dt", { text: "Spent this month" }), el("dd", { id: `${prefix}-spent`,
      text: usdFromNanos(wallet.spent_this_month_nanos) })));
  const body = el("tbody", { id: `${prefix}-history-rows` });
  for (const e of wallet.history) {
    body.append(el("tr", {}, el("th", { scope: "row", text: (e.created_at ?? "").slice(0, 16).replace("T", " ") }),
      el("td", { text: KIND[e.type] ?? e.type }), el("td", { text: usdFromNanos(e.amount_nanos), "data-nanos": String(e.amount_nanos) }),
      el("td", { text: e.reason ?? (e.payment_id ? `payment ${e.payment_id}` : "") })));
  }
  if (!wallet.history.length) body.append(el("tr", {}, el("td", { colspan: "4", text: "No credits yet." })));
  const table = el("table", { id: `${prefix}-history` }, el("caption", { text: "Credit history, newest first" }),
    el("thead", {}, el("tr", {}, ...["When (UTC)", "Kind", "Amount", "Reason"].map((h) => el("th", { scope: "col", text: h })))),
    body);
  const parts: Node[] = [cards, table];
  if (more) {
    const button = el("button", { type: "button", id: `${prefix}-more`, text: "More history" });
    button.addEventListener("click", more);
    parts.push(button);
  }
  box.replaceChildren(...parts);
}

/** The user's own wallet (GET /v1/credits), for the "My usage" page. */
export function creditsSection(api: Tokenledger): { section: HTMLElement; load: () => Promise<void> } {
  const box = el("div", { id: "credits" });
  const status = el("p", { id: "credits-status", role: "status" });
  const section = el("section", { "aria-labelledby": "credits-h" }, el("h2", { id: "credits-h", text: "Credits" }), status, box);
  let shown: Wallet | null = null;
  async function load(pageToken?: string) {
    try {
      const wallet = await api.credits(pageToken);
      shown = pageToken && shown ? { ...wallet, history: [...shown.history, ...wallet.history] } : wallet;
      const next = wallet.next_page_token;
      renderWallet(box, shown, next ? () => void load(next) : null, "credits");
      box.dataset.ready = "true";
    } catch (err) {
      status.textContent = sentence(err);
    }
  }
  return { section, load: () => load() };
}

/** The admin's grant form (amount, reason) and the chosen user's wallet. */
export function adminCreditsSection(api: Tokenledger): HTMLElement {
  const uid = el("input", { id: "credits-uid", required: "", autocomplete: "off" });
  const amount = el("input", { id: "credits-amount", type: "number", step: "any", required: "" });
  const reason = el("input", { id: "credits-reason", required: "", maxlength: "500" });
  const result = el("p", { id: "credits-result", role: "status" });
  const wallet = el("div", { id: "admin-wallet" });
  const show = el("button", { type: "button", id: "credits-show", text: "Show wallet" });
  const form = el("form", { id: "credits-form" },
    el("div", { class: "field" }, el("label", { for: "credits-uid", text: "Account (uid) to credit" }), uid),
    el("div", { class: "field" }, el("label", { for: "credits-amount", text: "Amount (USD; negative to adjust)" }), amount),
    el("div", { class: "field" }, el("label", { for: "credits-reason", text: "Reason" }), reason),
    el("button", { type: "submit", id: "credits-grant", text: "Grant credits" }), show, result);
  // One key per filled-in form: a double submit (or a retry after a lost answer) grants once.
  let key = crypto.randomUUID();
  for (const input of [uid, amount, reason]) input.addEventListener("input", () => { key = crypto.randomUUID(); });

  async function showWallet() {
    const user = uid.value.trim();
    if (!user) return;
    delete wallet.dataset.ready;
    try {
      const w = await api.call<Wallet>(`/v1/admin/credits/${encodeURIComponent(user)}?limit=20`);
      renderWallet(wallet, w, null, "admin-credits");
      wallet.dataset.ready = "true";
    } catch (err) {
      result.textContent = sentence(err);
    }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.textContent = "";
    const user = uid.value.trim();
    try {
      const done = await api.call<{ created: boolean; balance_nanos: number }>(`/v1/admin/credits/${encodeURIComponent(user)}`, {
        method: "POST", body: { amount: Number(amount.value), reason: reason.value, idempotency_key: key },
      });
      await showWallet();  // the wallet shown first, then the sentence: both tell the same balance
      result.textContent = `${done.created ? "Granted" : "Already granted"}: ${user} now has ${usdFromNanos(done.balance_nanos)}.`;
    } catch (err) {
      result.textContent = sentence(err);
    }
  });
  show.addEventListener("click", () => void showWallet());
  return el("section", { "aria-labelledby": "credits-admin-h" },
    el("h2", { id: "credits-admin-h", text: "Prepaid credits" }), form, wallet);
}
