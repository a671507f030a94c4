// Delivery to Optune (SPEC.md section 4): one POST per message, retried on network errors,
// timeouts, 408, 429, 500, 502, 503 and 504 with exponential backoff and jitter, honouring
// Retry-After, within a bounded total time. Other 4xx are never retried.
import http from "node:http";
import https from "node:https";
import type { RequestInit } from "node-fetch";
import type { Logger } from "./log.js";

export interface OutboundMessage {
  readonly appId: string;
  readonly body: object;
  /** Sent as Idempotency-Key so a receiver can drop a duplicate (the pod uid for a MEASUREMENT). */
  readonly idempotencyKey?: string;
}

export type DeliveryResult =
  | { readonly ok: true; readonly attempts: number; readonly dryRun?: true }
  | { readonly ok: false; readonly error: string; readonly attempts: number; readonly retryAfterSeconds?: number };

export type Deliver = (message: OutboundMessage) => Promise<DeliveryResult>;

export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 8000;

/** The URL for one app: {acct} and {app_id} percent-encoded as path segments; {acct} stays when unknown (dry run). */
export function targetUrl(template: string, account: string | undefined, appId: string): string {
  const withAccount = account === undefined ? template : template.replaceAll("{acct}", () => encodeURIComponent(account));
  return withAccount.replaceAll("{app_id}", () => encodeURIComponent(appId));
}

/** Exponential backoff with "equal jitter": half fixed, half random, so retries never bunch at 0. */
export function backoffMs(attempt: number, random: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (attempt - 1));
  return ceiling / 2 + (random * ceiling) / 2;
}

/** Retry-After as delta-seconds or an HTTP date, in milliseconds from `now`. */
export function retryAfterMs(header: string | null | undefined, now: number): number | undefined {
  if (header === null || header === undefined || header.trim() === "") return undefined;
  if (/^\s*[0-9]+\s*$/.test(header)) return Number(header) * 1000;
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

export interface SenderOptions {
  readonly token: string | undefined;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  readonly log: Logger;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly now?: () => number;
}

export type Post = (url: string, body: string, headers: Readonly<Record<string, string>>) => Promise<DeliveryResult>;

// Loaded on the first delivery, not at start: the server listens ~30 ms sooner on a cold start.
let nodeFetch: Promise<typeof import("node-fetch")> | undefined;

// One keep-alive pool per process: deliveries to the same host reuse connections.
const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
const agentFor = (url: URL): http.Agent => (url.protocol === "http:" ? agents.http : agents.https);

/** POSTs JSON with retries; resolves (never rejects) with the outcome. */
export function createPost(options: SenderOptions): Post {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const auth: Record<string, string> = options.token === undefined ? {} : { Authorization: `Bearer ${options.token}` };

  return async (url, body, headers) => {
    const { default: fetch } = await (nodeFetch ??= import("node-fetch"));
    const deadline = now() + options.deadlineMs;
    for (let attempt = 1; ; attempt++) {
      const remaining = deadline - now();
      const init: RequestInit = {
        method: "POST",
        headers: { "Content-Type": "application/json", ...auth, ...headers },
        body,
        agent: agentFor,
        redirect: "manual",
        signal: AbortSignal.timeout(Math.max(1, Math.ceil(Math.min(options.timeoutMs, remaining)))) as RequestInit["signal"],
      };
      let failure: string;
      let waitMs = backoffMs(attempt, random());
      try {
        const response = await fetch(url, init);
        const text = await response.text();
        if (response.ok) return { ok: true, attempts: attempt };
        failure = `Optune answered ${response.status} ${response.statusText}${text ? `: ${text.slice(0, 200)}` : ""}`;
        if (!RETRYABLE_STATUS.has(response.status)) return { ok: false, error: failure, attempts: attempt };
        waitMs = retryAfterMs(response.headers.get("retry-after"), now()) ?? waitMs;
      } catch (error) {
        failure = describeError(error, options.timeoutMs);
      }
      const left = deadline - now();
      if (waitMs >= left) {
        options.log.warn("optune delivery gave up", { url, attempts: attempt, error: failure });
        return { ok: false, error: failure, attempts: attempt, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
      }
      options.log.warn("optune delivery attempt failed, retrying", { url, attempt, error: failure, retryInMs: Math.round(waitMs) });
      await sleep(waitMs);
    }
  };
}

function describeError(error: unknown, timeoutMs: number): string {
  const err = error as { name?: string; message?: string };
  if (err.name === "AbortError" || err.name === "TimeoutError") return `no answer from Optune within ${timeoutMs} ms`;
  return `cannot reach Optune: ${err.message ?? String(error)}`;
}

export interface DeliverOptions {
  readonly optuneUrl: string;
  readonly account: string | undefined;
  /** Print instead of sending. */
  readonly dryRun: boolean;
  /** Where {"url","message"} lines go: every message in a dry run; sent ones too when `echo` is set. */
  readonly print: (line: string) => void;
  readonly echo?: boolean;
  readonly post: Post;
}

/** The one place a message becomes a request: URL, body, headers; or a printed line in a dry run. */
export function createDeliver(options: DeliverOptions): Deliver {
  return async (message) => {
    const url = targetUrl(options.optuneUrl, options.account, message.appId);
    const line = () => options.print(`${JSON.stringify({ url, message: message.body })}\n`);
    if (options.dryRun) {
      line();
      return { ok: true, attempts: 0, dryRun: true };
    }
    const headers: Record<string, string> = message.idempotencyKey === undefined ? {} : { "Idempotency-Key": message.idempotencyKey };
    const result = await options.post(url, JSON.stringify(message.body), headers);
    if (result.ok && options.echo === true) line();
    return result;
  };
}
