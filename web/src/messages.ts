/** API errors as sentences a person understands (the playground and admin forms show these). */
import { TokenledgerError } from "./client";
import { usdFromFloat } from "./format";

function wait(seconds: number | null): string {
  if (seconds === null) return "in a little while";
  if (seconds < 90) return `in ${Math.max(1, Math.round(seconds))} seconds`;
  if (seconds < 5400) return `in about ${Math.round(seconds / 60)} minutes`;
  return `in about ${Math.round(seconds / 3600)} hours`;
}

export function sentence(err: unknown, budget?: { spent: number; monthly_budget: number | null }): string {
  if (!(err instanceof TokenledgerError)) {
    return "The service could not be reached. Check your connection and try again.";
  }
  switch (err.code) {
    case "budget_exceeded": {
      const where = budget && budget.monthly_budget !== null
        ? ` You have used ${usdFromFloat(budget.spent)} of your ${usdFromFloat(budget.monthly_budget)} monthly budget.`
        : "";
      return `This request could cost more than what is left of your monthly budget, so it was not sent.${where} ` +
        "Choose a free model, ask for a shorter answer, or ask an administrator to raise your budget.";
    }
    case "credits_exhausted":
      return `This request could cost more than your credits and this month's allowance cover, so it was not sent. ${err.message}`;
    case "free_quota_exceeded":
      return `You have used all of today's free requests. They come back at midnight UTC (${wait(err.retryAfterS)}).`;
    case "rate_limited":
      return `Too many requests right now. Please try again ${wait(err.retryAfterS)}.`;
    case "unauthenticated": case "invalid_token": case "token_expired": case "token_revoked":
      return "Your session has ended. Please sign in again.";
    case "forbidden":
      return "You do not have access to this. It is for administrators.";
    case "model_not_allowed": case "model_not_found":
      return "That model is not available in this app. Pick another one from the list.";
    case "model_not_in_plan":
      return `${err.message} Pick a model your plan includes, or change your plan.`;
    case "max_tokens_too_large":
      return `The answer length you asked for is too long. ${err.message}`;
    case "payload_too_large":
      return "Your message is too long for this app. Shorten it and try again.";
    case "content_flagged":
      return "The model's provider refused this message under its content policy.";
    case "upstream_timeout": case "upstream_unavailable": case "upstream_unreachable": case "upstream_error":
      return "The AI provider is not answering right now. Nothing was charged. Please try again shortly.";
    default:
      return err.message || "Something went wrong. Please try again.";
  }
}
