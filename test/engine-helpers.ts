// Shared pieces of the engine tests: a toy stage, contexts with captured output, and configs.

import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { z } from "zod";
import type { CommandContext } from "../src/cli/command.js";
import { EngineConfig } from "../src/engine/config.js";
import type { LlmRequest } from "../src/engine/types.js";
import { tempDir as makeTempDir } from "./helpers/temp.js";

export function sink(isTTY = false): Writable & { text: () => string; isTTY: boolean } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { text: () => string; isTTY: boolean };
  w.text = () => chunks.join("");
  w.isTTY = isTTY;
  return w;
}

export type TestContext = CommandContext & { out: ReturnType<typeof sink>; err: ReturnType<typeof sink> };

export function context(env: NodeJS.ProcessEnv = {}, cwd = tmpdir()): TestContext {
  const out = sink();
  const err = sink();
  return { env, cwd, stdout: out, stderr: err, out, err };
}

export async function tempDir(): Promise<string> {
  return makeTempDir("gm-engine-");
}

export function config(over: Record<string, unknown> = {}): EngineConfig {
  return EngineConfig.parse({ provider: "anthropic", concurrency: 4, ...over });
}

const Title = z.object({ title: z.string().min(1) });

export const TITLE_SCHEMA = {
  type: "object",
  properties: { title: { type: "string" } },
  required: ["title"],
  additionalProperties: false,
};

/** The user prompt of toy item i: the fake keys its log on this text. */
export function userText(i: number): string {
  return `Rewrite the title of news N${i}: "Local team wins the ${i}th match of the season"`;
}

/** A toy JSON stage: answer {"title": ...}; invalid JSON or a missing title is an error to state back. */
export function titleRequests(n: number, opts: { stage?: string; system?: string; maxTokens?: number; from?: number } = {}): LlmRequest[] {
  const out: LlmRequest[] = [];
  for (let k = 0; k < n; k++) {
    const i = (opts.from ?? 0) + k;
    out.push({
      stage: opts.stage ?? "summarize",
      itemId: `N${i}`,
      system: opts.system ?? "You rewrite news titles. Answer with JSON {\"title\": string}.",
      user: userText(i),
      jsonSchema: TITLE_SCHEMA,
      schemaVersion: "1",
      maxTokens: opts.maxTokens ?? 200,
      parse(raw) {
        let v: unknown;
        try {
          v = JSON.parse(raw);
        } catch (e) {
          return { ok: false, error: `not JSON (${(e as Error).message})` };
        }
        const r = Title.safeParse(v);
        return r.success ? { ok: true, value: r.data } : { ok: false, error: `expected {"title": string}: ${r.error.issues[0]?.message}` };
      },
      offline: () => JSON.stringify({ title: `Offline title ${i}` }),
    });
  }
  return out;
}

/** The fake's answer for toy items: a valid title derived from the user prompt. */
export function titleAnswer(body: { messages: { content: unknown }[] }): string {
  const first = body.messages[0]?.content;
  const text = typeof first === "string" ? first : JSON.stringify(first);
  const id = /news (N\d+)/.exec(text)?.[1] ?? "N?";
  return JSON.stringify({ title: `Title for ${id}` });
}
