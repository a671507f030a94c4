// Prometheus' instant-query API (GET /api/v1/query), as the measuring half needs it: a few vector
// queries per finished job. Whatever Prometheus does (down, slow, 4xx/5xx, a redirect, an answer
// that is not JSON or too big), a query ends within the timeout with a reason, never a throw, and
// nothing it sent is logged or returned beyond a short, clipped excerpt.
import http from "node:http";
import https from "node:https";
import type { PrometheusConfig } from "./config.js";

/** One series of an instant vector: its labels and its value. */
export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

export type QueryResult = { readonly ok: true; readonly samples: readonly Sample[] } | { readonly ok: false; readonly reason: string };

export type Query = (promql: string, atSeconds: number, signal: AbortSignal) => Promise<QueryResult>;

/** An answer larger than this is refused (a few series of a few labels each are a few KiB). */
export const MAX_ANSWER_BYTES = 1024 * 1024;

export function connectPrometheus(config: PrometheusConfig): Query {
  const base = new URL(`${config.url}/api/v1/query`);
  const client = base.protocol === "https:" ? https : http;
  const agent = new client.Agent({ keepAlive: true, maxSockets: 8, ...(config.ca === undefined ? {} : { ca: config.ca }) });
  return (promql, atSeconds, signal) =>
    new Promise<QueryResult>((resolve) => {
      const url = new URL(base);
      url.searchParams.set("query", promql);
      url.searchParams.set("time", atSeconds.toFixed(3));
      const done = (result: QueryResult) => {
        resolve(result);
        request.destroy();
      };
      const request = client.request(url, { method: "GET", agent, signal, headers: { accept: "application/json", ...(config.bearerToken === undefined ? {} : { authorization: `Bearer ${config.bearerToken}` }) } }, (response) => {
        const status = response.statusCode ?? 0;
        // Redirects are not followed: the bearer token would go wherever Prometheus says.
        if (status < 200 || status >= 300) return done({ ok: false, reason: `Prometheus answered ${status}` });
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) done({ ok: false, reason: `Prometheus' answer is larger than ${MAX_ANSWER_BYTES} bytes` });
          else chunks.push(chunk);
        });
        response.on("end", () => done(parseAnswer(Buffer.concat(chunks).toString("utf8"))));
        response.on("error", () => done({ ok: false, reason: "Prometheus' answer broke off" }));
      });
      request.on("error", (error) => resolve({ ok: false, reason: signal.aborted ? abortReason(signal, config.timeoutMs) : `cannot reach Prometheus: ${(error as NodeJS.ErrnoException).code ?? "error"}` }));
      request.end();
    });
}

/** Why an aborted query ended: its timeout, or the shutdown. */
function abortReason(signal: AbortSignal, timeoutMs: number): string {
  return (signal.reason as Error | undefined)?.name === "TimeoutError" ? `no answer from Prometheus within ${timeoutMs} ms` : "the query was stopped: the function is shutting down";
}

/** A sample value as Prometheus writes it (Go's FormatFloat); NaN and ±Inf are no samples here. */
const FLOAT = /^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/;

/** The instant vector of a query answer, or why it is not one. */
export function parseAnswer(text: string): QueryResult {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return { ok: false, reason: "Prometheus' answer is not JSON" };
  }
  const { status, data } = (answer ?? {}) as { status?: unknown; data?: { resultType?: unknown; result?: unknown } };
  if (status !== "success" || data?.resultType !== "vector" || !Array.isArray(data.result)) return { ok: false, reason: "Prometheus' answer is not a successful instant vector" };
  const samples: Sample[] = [];
  for (const item of data.result as unknown[]) {
    const { metric, value } = (item ?? {}) as { metric?: unknown; value?: unknown };
    if (typeof metric !== "object" || metric === null || !Array.isArray(value) || typeof value[1] !== "string") continue;
    // Number() would take "" and " " as 0, and hex or padded text as numbers Prometheus never writes.
    const number = FLOAT.test(value[1]) ? Number(value[1]) : Number.NaN;
    if (!Number.isFinite(number)) continue;
    const labels: Record<string, string> = {};
    for (const [name, label] of Object.entries(metric)) if (typeof label === "string") labels[name] = label;
    samples.push({ metric: labels, value: number });
  }
  return { ok: true, samples };
}
