// Streams one chat call through tokenledger with each JavaScript SDK an app wires it into and
// prints what each SDK made of it (one JSON line), for tests/integration/test_sdk_streams.py.
//   node tests/sdk/stream_check.mjs <openai|vercel> <API_URL> <ID token> <model> <prompt>
import OpenAI from "openai";
import { streamText } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";

const [sdk, apiUrl, token, model, prompt] = process.argv.slice(2);

async function viaOpenAI() {
  const client = new OpenAI({ baseURL: `${apiUrl}/v1`, apiKey: token, maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model, messages: [{ role: "user", content: prompt }], stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  const signals = [];
  for await (const chunk of stream) {
    text += chunk.choices?.[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
    if ("usage_recorded" in chunk) signals.push({ usage_recorded: chunk.usage_recorded, budget: chunk.budget ?? null, choices: chunk.choices.length });
  }
  return { text, usage, signals };
}

async function viaVercel() {
  const provider = createOpenAICompatible({ name: "tokenledger", baseURL: `${apiUrl}/v1`, apiKey: token, includeUsage: true });
  const result = streamText({ model: provider.chatModel(model), prompt, includeRawChunks: true, maxRetries: 0 });
  let text = "";
  const errors = [];
  const signals = [];
  for await (const part of result.fullStream) {
    if (part.type === "text-delta") text += part.text;
    if (part.type === "error") errors.push(String(part.error?.message ?? part.error));
    if (part.type === "raw" && part.rawValue && typeof part.rawValue === "object" && "usage_recorded" in part.rawValue) {
      signals.push({ usage_recorded: part.rawValue.usage_recorded, budget: part.rawValue.budget ?? null, choices: part.rawValue.choices.length });
    }
  }
  const usage = await result.usage;
  return { text, usage: { prompt_tokens: usage.inputTokens, completion_tokens: usage.outputTokens }, errors, signals,
           finishReason: await result.finishReason };
}

const out = sdk === "openai" ? await viaOpenAI() : await viaVercel();
console.log(JSON.stringify(out));
