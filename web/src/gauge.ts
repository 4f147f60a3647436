/** The budget gauge: an SVG bar of spent against the budget, a mark at each alert threshold. */
import { usdFromNanos } from "./format";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** A horizontal gauge: spent (and reserved) against the budget, a mark at each alert threshold. */
export function drawGauge(host: HTMLElement, spentNanos: number, budgetUsd: number | null, thresholds: number[]) {
  host.replaceChildren();
  const width = 600, height = 64, barY = 18, barH = 22;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img" });
  const title = budgetUsd === null
    ? `${usdFromNanos(spentNanos)} spent; no monthly budget set`
    : `${usdFromNanos(spentNanos)} of ${usdFromNanos(Math.round(budgetUsd * 1e9))} monthly budget`;
  root.setAttribute("aria-label", title);
  root.append(svg("rect", { x: 0, y: barY, width, height: barH, rx: 4, fill: "#e5e7eb" }));
  if (budgetUsd !== null && budgetUsd > 0) {
    const used = spentNanos / (budgetUsd * 1e9);
    const fill = used >= 1 ? "#dc2626" : used >= Math.min(...thresholds, 1) ? "#d97706" : "#059669";
    root.append(svg("rect", { x: 0, y: barY, width: Math.min(used, 1) * width, height: barH, rx: 4, fill }));
    for (const t of thresholds) {
      const x = Math.min(t, 1) * width - (t >= 1 ? 1 : 0);
      root.append(svg("line", { x1: x, x2: x, y1: barY - 6, y2: barY + barH + 6, stroke: "#111827", "stroke-width": 2 }));
      const label = svg("text", { x: Math.min(Math.max(x, 14), width - 14), y: barY + barH + 20,
        "text-anchor": "middle", "font-size": 12, fill: "#111827" });
      label.textContent = `${Math.round(t * 100)}%`;
      root.append(label);
    }
  }
  host.append(root);
}
