/**
 * The daily cost chart (Chart.js, bars stacked by model). Chart.js is registered piece by piece
 * so the bundle carries only bars; the usage page loads this module beside its first paint.
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from "chart.js";
import { usdFromNanos } from "./format";
import type { Rollup } from "./rollups";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const PALETTE = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];
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
