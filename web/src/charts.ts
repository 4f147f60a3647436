/**
 * Drawing: the budget gauge (SVG, thresholds marked) and the daily cost chart (Chart.js, bars
 * stacked by model). Chart.js is registered piece by piece so the bundle carries only bars.
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from "chart.js";
import { usdFromNanos } from "./format";
import type { Rollup } from "./rollups";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const PALETTE = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];
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

/** Daily cost by model, stacked. Returns the chart so the page can update it in place. */
export function drawDailyChart(canvas: HTMLCanvasElement, month: string, days: Record<string, Rollup>,
                               existing: Chart | null): Chart {
  const [y, m] = month.split("-").map(Number);
  const count = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const labels = Array.from({ length: count }, (_, i) => String(i + 1));
  const models = [...new Set(Object.values(days).flatMap((d) => Object.keys(d.by_model)))].sort();
  const datasets = models.map((model, i) => ({
    label: model,
    backgroundColor: PALETTE[i % PALETTE.length],
    data: labels.map((_, day) => {
      const key = `${month}-${String(day + 1).padStart(2, "0")}`;
      return (days[key]?.by_model[model]?.cost_nanos ?? 0) / 1e9;
    }),
  }));
  // What is drawn, for people using a screen reader and for the browser tests.
  canvas.dataset.series = JSON.stringify(models);
  canvas.setAttribute("aria-label", models.length
    ? `Daily cost in ${month}, stacked by model: ${models.join(", ")}`
    : `Daily cost in ${month}: no calls yet`);
  if (existing) {
    existing.data.labels = labels;
    existing.data.datasets = datasets;
    existing.update();
    return existing;
  }
  return new Chart(canvas, {
    type: "bar",
    data: { labels, datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: { stacked: true, title: { display: true, text: `Day of ${month}` } },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: "USD" },
          ticks: { callback: (v) => usdFromNanos(Math.round(Number(v) * 1e9)) } },
      },
      plugins: {
        legend: { position: "bottom" },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${usdFromNanos(Math.round(Number(c.raw) * 1e9))}` } },
      },
    },
  });
}
