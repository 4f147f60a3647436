/** The admin page's "Ledger healing" section: GET /v1/admin/ledger-health (README, Outbox). */
import type { Tokenledger } from "./client";
import { count, el } from "./format";
import { sentence } from "./messages";

export interface LedgerHealth {
  queued: number;
  oldest_queued_at: string | null;
  oldest_queued_age_s: number | null;
  healed_last_hour: number;
  healed_last_day: number;
  dead_lettered: number;
  pending_rows: { under_1h: number; "1h_to_1d": number; over_1d: number; total: number };
  checked_at: string;
}

function age(seconds: number | null): string {
  if (seconds === null) return "none";
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

export function ledgerHealthSection(api: Tokenledger): { section: HTMLElement; load: () => Promise<void> } {
  const body = el("div", { id: "ledger-health" });
  const section = el("section", { "aria-labelledby": "healing-h" },
    el("h2", { id: "healing-h", text: "Ledger healing" }), body);
  async function load(): Promise<void> {
    try {
      const h = await api.call<LedgerHealth>("/v1/admin/ledger-health");
      const p = h.pending_rows;
      const rows: string[][] = [
        ["Queued in the outbox", count(h.queued)],
        ["Oldest still queued", age(h.oldest_queued_age_s)],
        ["Healed in the last hour", count(h.healed_last_hour)],
        ["Healed in the last day", count(h.healed_last_day)],
        ["Dead-lettered", count(h.dead_lettered)],
        ["Pending rows (under 1 h / 1 h to 1 d / older)", `${count(p.under_1h)} / ${count(p["1h_to_1d"])} / ${count(p.over_1d)}`],
      ];
      const tbody = el("tbody", {}, ...rows.map((r) => el("tr", {}, el("th", { scope: "row", text: r[0] }), el("td", { text: r[1] }))));
      body.dataset.state = h.dead_lettered > 0 ? "dead-letter" : h.queued > 0 ? "queued" : "ok";
      body.replaceChildren(el("table", { id: "ledger-health-table" }, el("caption", { text: "Calls the ledger recorded late" }),
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Measure" }), el("th", { scope: "col", text: "Value" }))), tbody));
    } catch (err) {
      body.replaceChildren(el("p", { role: "status", text: sentence(err) }));
    }
  }
  return { section, load };
}
