/** Admin section: alerts not (yet) delivered to every webhook target (GET /v1/admin/alerts/undelivered). */
import type { Tokenledger } from "../client";
import { el } from "../format";
import { sentence } from "../messages";

interface TargetState { target: string; status: string; attempts: number; last_error: string | null; next_at: string | null }
interface Undelivered {
  id: string; collection: string; alert_type: string; user_id: string | null; month: string | null;
  created_at: string | null; pending: boolean; targets: TargetState[];
}

/** The section element and its loader; the page calls load() with its own refreshes. */
export function undeliveredSection(api: Tokenledger): { section: HTMLElement; load: (month: string) => Promise<void> } {
  const body = el("div", { id: "admin-undelivered" });
  const section = el("section", { "aria-labelledby": "undelivered-h" },
    el("h2", { id: "undelivered-h", text: "Undelivered alerts" }), body);
  async function load(month: string) {
    try {
      const r = await api.call<{ data: Undelivered[] }>(`/v1/admin/alerts/undelivered?month=${month}&limit=50`);
      const rows = r.data.flatMap((a) => a.targets.map((t) => [a.id, a.alert_type, a.user_id ?? "(app)", t.target,
        t.status, String(t.attempts), t.last_error ?? ""]));
      const head = ["Alert", "Kind", "User", "Target", "Status", "Attempts", "Last error"];
      const tbody = el("tbody");
      for (const row of rows) tbody.append(el("tr", {}, el("th", { scope: "row", text: row[0] }), ...row.slice(1).map((c) => el("td", { text: c }))));
      if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: String(head.length), text: "Every alert was delivered." })));
      body.replaceChildren(el("table", { id: "undelivered-table" },
        el("caption", { text: `Webhook and Slack targets that have not received an alert of ${month} (open, blocked or failed)` }),
        el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))), tbody));
    } catch (err) {
      body.replaceChildren(el("p", { text: sentence(err) }));
    }
  }
  return { section, load };
}
