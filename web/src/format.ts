/** Display helpers. Money from integer nano-dollars is formatted exactly (no float sums). */

/** "$0.000722" from 722000 nanos: exact, trailing zeros trimmed, at least 2 decimals. */
export function usdFromNanos(nanos: number): string {
  const negative = nanos < 0;
  const digits = String(Math.abs(Math.trunc(nanos))).padStart(10, "0");
  const whole = digits.slice(0, -9).replace(/^0+(?=\d)/, "");
  let frac = digits.slice(-9).replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${negative ? "-" : ""}$${Number(whole).toLocaleString("en-US")}.${frac}`;
}

/** A USD float as the API sends it (already rounded to nano-dollars): shown to the nano-dollar. */
export function usdFromFloat(usd: number): string {
  return usdFromNanos(Math.round(usd * 1e9));
}

export function count(n: number): string {
  return n.toLocaleString("en-US");
}

export function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(fraction < 0.1 ? 1 : 0)}%`;
}

/** Price per token (USD string) as dollars per million tokens. */
export function perMillion(pricePerToken: string): string {
  const v = Number(pricePerToken) * 1e6;
  return `$${v.toFixed(v < 1 ? 3 : 2)}/M`;
}

export function currentMonth(now = new Date()): string {
  return now.toISOString().slice(0, 7);
}

/** First and last day of "YYYY-MM". */
export function monthSpan(month: string): { from: string; to: string } {
  const [y, m] = month.split("-").map(Number);
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return { from: `${month}-01`, to: `${month}-${String(last).padStart(2, "0")}` };
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}
