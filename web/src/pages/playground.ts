/** Playground: pick a model, see the estimate, stream the answer, then its tokens and cost. */
import { createChat, fromSdkError } from "../chat";
import type { BudgetStatus, Estimate, ModelInfo, UsageCost } from "../client";
import type { Page } from "../context";
import { count, el, perMillion, usdFromFloat } from "../format";
import { sentence } from "../messages";

function modelLabel(m: ModelInfo): string {
  return m.is_free ? `${m.id} (free)` : `${m.id} (${perMillion(m.pricing.prompt)} in, ${perMillion(m.pricing.completion)} out)`;
}

function estimateText(e: Estimate): string {
  if (e.is_free) return "Free model: this call costs nothing.";
  if (e.min_cost === null || e.max_cost === null) return "This model's price is not known in advance.";
  return `Estimated cost: ${usdFromFloat(e.min_cost)} to ${usdFromFloat(e.max_cost)} ` +
    `(about ${count(e.prompt_tokens_estimate)} prompt tokens, at most ${count(e.max_completion_tokens)} completion tokens).`;
}

export const playgroundPage: Page = (root, { api, user }) => {
  const chat = createChat({ baseUrl: api.root, getIdToken: () => user.getIdToken() });
  const model = el("select", { id: "model", required: "" });
  const prompt = el("textarea", { id: "prompt", rows: "4", required: "" });
  prompt.value = "Write a haiku about careful bookkeeping.";
  const maxTokens = el("input", { id: "max-tokens", type: "number", min: "1", max: "8192", value: "200" });
  const send = el("button", { type: "submit", id: "send", text: "Send" });
  const estimate = el("p", { id: "estimate", "aria-live": "polite" });
  const answer = el("div", { id: "answer", "aria-live": "polite", "aria-busy": "false" });
  const usage = el("p", { id: "call-usage" });
  const downgradedNote = el("p", { id: "downgraded", role: "status" });
  const problem = el("p", { id: "problem", role: "alert" });
  const form = el("form", { id: "playground-form" },
    el("div", { class: "field" }, el("label", { for: "model", text: "Model" }), model),
    el("div", { class: "field" }, el("label", { for: "prompt", text: "Message" }), prompt),
    el("div", { class: "field" }, el("label", { for: "max-tokens", text: "Longest answer (tokens)" }), maxTokens),
    estimate, send);
  root.replaceChildren(el("h1", { text: "Playground" }), form, problem,
    el("section", { "aria-labelledby": "answer-h" }, el("h2", { id: "answer-h", text: "Answer" }), answer, usage,
      downgradedNote));

  let alive = true;
  let estimateSeq = 0;
  const body = () => ({
    model: model.value,
    messages: [{ role: "user" as const, content: prompt.value }],
    max_tokens: Number(maxTokens.value) || undefined,
  });

  async function refreshEstimate() {
    if (!model.value || !prompt.value.trim()) { estimate.textContent = ""; return; }
    const seq = ++estimateSeq;
    try {
      const e = await api.estimate(body());
      if (seq === estimateSeq && alive) estimate.textContent = estimateText(e);
    } catch (err) {
      if (seq === estimateSeq && alive) estimate.textContent = sentence(err);
    }
  }

  let timer: number | undefined;
  const soon = () => { clearTimeout(timer); timer = window.setTimeout(refreshEstimate, 250); };
  model.addEventListener("change", refreshEstimate);
  prompt.addEventListener("input", soon);
  maxTokens.addEventListener("input", soon);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    send.disabled = true;
    problem.textContent = "";
    answer.textContent = "";
    usage.textContent = "";
    downgradedNote.textContent = "";
    delete usage.dataset.cost;
    answer.dataset.paints = "0";
    answer.setAttribute("aria-busy", "true");
    try {
      const { data: stream, response } = await chat.chat.completions.create({ ...body(), stream: true }).withResponse();
      // Budget-aware downgrade (a plan's `downgrade_to`): "<requested> -> <served>".
      const [asked, served] = (response.headers.get("X-Tokenledger-Downgraded") ?? "").split(" -> ");
      if (served) {
        downgradedNote.textContent = `Your budget for ${asked} is used up, so this answer comes from ${served} instead.`;
      }
      let final: UsageCost | null = null;
      for await (const chunk of stream) {
        const text = chunk.choices[0]?.delta?.content;
        if (text) {
          answer.append(text);
          answer.dataset.paints = String(Number(answer.dataset.paints) + 1);
          // Let the browser paint this piece before the next one is appended.
          await new Promise((r) => requestAnimationFrame(() => r(null)));
        }
        if (chunk.usage) final = chunk.usage as UsageCost;
      }
      if (final) {
        const cost = final.cost ?? 0;
        usage.dataset.cost = String(cost);
        usage.textContent = `${count(final.prompt_tokens)} prompt + ${count(final.completion_tokens)} completion tokens, ` +
          `cost ${usdFromFloat(cost)}`;
      } else {
        usage.textContent = "The answer ended without a usage report; it is recorded at an estimate and settled later.";
      }
    } catch (err) {
      const e = fromSdkError(err);
      console.error("playground call failed", e);
      let budget: BudgetStatus | undefined;
      if ((e as { code?: string }).code === "budget_exceeded") budget = await api.budget().catch(() => undefined);
      problem.textContent = sentence(e, budget);
      problem.dataset.code = String((e as { code?: string }).code ?? "");
    } finally {
      answer.setAttribute("aria-busy", "false");
      send.disabled = false;
    }
  });

  api.models().then((list) => {
    if (!alive) return;
    model.replaceChildren(...list.data.map((m) => el("option", { value: m.id, text: modelLabel(m) })));
    const preferred = list.data.find((m) => m.id === "openai/gpt-4o-mini") ?? list.data[0];
    if (preferred) model.value = preferred.id;
    root.dataset.ready = "true";
    void refreshEstimate();
  }).catch((err) => { problem.textContent = sentence(err); });

  return () => { alive = false; clearTimeout(timer); };
};
