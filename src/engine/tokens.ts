// The token estimate used when the API's counter is not asked (dry-run default) and for the rate
// budgets before a call. English prose runs about 4 characters per token on Claude's tokenizers and
// JSON/IDs fewer; 3.5 leans high so a budget is not overrun and a dry-run does not under-promise.
// The fixed overheads mirror what count_tokens reports beyond the raw text (role markers, the
// structured-output instruction).
import type { ProviderCall } from "../providers/types.js";

export const CHARS_PER_TOKEN = 3.5;
const PER_MESSAGE = 4;
const PER_REQUEST = 3;
const STRUCTURED_OUTPUT = 50;

export function estimateTextTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

export interface TokenEstimate {
  /** Every input token of the call, system included. */
  total: number;
  /** The system block alone: the part prompt caching can serve. */
  system: number;
}

export function estimateCallTokens(call: ProviderCall): TokenEstimate {
  const system = estimateTextTokens(call.system);
  let total = system + PER_REQUEST;
  for (const m of call.messages) total += estimateTextTokens(m.content) + PER_MESSAGE;
  if (call.jsonSchema) total += estimateTextTokens(JSON.stringify(call.jsonSchema)) + STRUCTURED_OUTPUT;
  return { total, system };
}
