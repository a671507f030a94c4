// The Optune client, shared by both halves (SPEC.md section 4, ADJUST.md section 1): one POST per
// message, retried on network errors, timeouts, 408, 429, 500, 502, 503 and 504 with exponential
// backoff and jitter, never sooner than the backoff whatever Retry-After says, within a bounded
// total time. Other answers are never retried. What comes back from the remote is untrusted: it
// is read up to a bound, redacted of the token, logged as an excerpt, and never handed back to
// the event source.
import http from "node:http";
import https from "node:https";
import type { RequestInit, Response } from "node-fetch";
import type { Config } from "./config.js";
import type { Logger } from "./log.js";
import { tokenSource } from "./secret-files.js";

export interface OutboundMessage {
  readonly appId: string;
  readonly body: object;
  /** Sent as Idempotency-Key so a receiver can drop a duplicate (the pod uid for a MEASUREMENT). */
  readonly idempotencyKey?: string;
  /** Also read the body of a 2xx answer (a WHATS_NEXT command); a MEASUREMENT is done at the status line. */
  readonly wantAnswer?: boolean;
  /** A shorter bound on all attempts than the sender's (what is left of an admission's budget). */
  readonly deadlineMs?: number;
}

export type DeliveryResult =
  | {
      readonly ok: true;
      readonly attempts: number;
      readonly dryRun?: true;
      /** The body of the 2xx answer, when asked for and read completely (at most MAX_ANSWER_BYTES). */
      readonly answer?: string;
    }
  | {
      readonly ok: false;
      /** What went wrong, in our words: safe to log and to return to the event source. */
      readonly error: string;
      readonly attempts: number;
      /** When to try again, in whole seconds (1–300); absent for a failure that retrying cannot fix. */
      readonly retryAfterSeconds?: number;
      /** The request could not be built (no retry can help): never reported as retryable. */
      readonly permanent?: true;
      /** Optune's status, when it answered. */
      readonly status?: number;
    };

export type Deliver = (message: OutboundMessage) => Promise<DeliveryResult>;

export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 8000;
/** Whatever Optune says, the event source is never told to wait longer than this. */
export const MAX_RETRY_AFTER_SECONDS = 300;
/** A command from Optune is a few hundred bytes; a longer answer is cut off. */
export const MAX_ANSWER_BYTES = 64 * 1024;
/** How much of an error answer is kept for the log. */
const MAX_EXCERPT_BYTES = 512;

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

/**
 * Retry-After (RFC 9110) as delta-seconds (digits only) or an HTTP date, in milliseconds from
 * `now`, at most MAX_RETRY_AFTER_SECONDS; undefined when absent or not one of those forms
 * (negative, fractional, garbage). A date in the past is 0.
 */
export function retryAfterMs(header: string | null | undefined, now: number): number | undefined {
  if (header === null || header === undefined) return undefined;
  const value = header.trim();
  if (/^[0-9]+$/.test(value)) return Math.min(Number(value), MAX_RETRY_AFTER_SECONDS) * 1000;
  if (!/^[A-Za-z]{3,9},? [0-9A-Za-z :-]+$/.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.min(Math.max(0, date - now), MAX_RETRY_AFTER_SECONDS * 1000) : undefined;
}

/** Whole seconds for a Retry-After header: at least 1, at most MAX_RETRY_AFTER_SECONDS. */
export function retryAfterSeconds(ms: number): number {
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(ms / 1000)));
}

/** Replaces every occurrence of the token, and any Bearer credential, in text that came from a remote. */
export function redact(text: string, token: string | undefined): string {
  const withoutToken = token === undefined || token === "" ? text : text.replaceAll(token, "[redacted]");
  return withoutToken.replace(/(bearer|basic)(\s+|%20)[^\s"',;}]+/gi, "$1$2[redacted]");
}

export interface SenderOptions {
  /** The token to send now (it may be rotated while the function runs). */
  readonly token: () => string | undefined;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  readonly log: Logger;
  /** Aborted when the function must stop: deliveries in flight end as failures at once. */
  readonly signal?: AbortSignal;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  readonly now?: () => number;
}

export type Post = (url: string, body: string, headers: Readonly<Record<string, string>>, options?: { readonly wantAnswer?: boolean; readonly deadlineMs?: number }) => Promise<DeliveryResult>;

// Loaded on the first delivery, not at start: the server listens ~30 ms sooner on a cold start.
let nodeFetch: Promise<typeof import("node-fetch")> | undefined;

// One keep-alive pool per process: deliveries to the same host reuse connections.
const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
const agentFor = (url: URL): http.Agent => (url.protocol === "http:" ? agents.http : agents.https);

const sleepFor = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

const SHUTTING_DOWN = "the function is shutting down";

/** POSTs JSON with retries; resolves (never rejects) with the outcome. */
export function createPost(options: SenderOptions): Post {
  const sleep = options.sleep ?? sleepFor;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const { signal: stopping, log } = options;

  return async (url, body, headers, { wantAnswer = false, deadlineMs = options.deadlineMs } = {}) => {
    const { default: fetch } = await (nodeFetch ??= import("node-fetch"));
    const deadline = now() + Math.min(deadlineMs, options.deadlineMs);
    const token = options.token();
    for (let attempt = 1; ; attempt++) {
      if (stopping?.aborted) return { ok: false, error: SHUTTING_DOWN, attempts: attempt - 1, retryAfterSeconds: 1 };
      const remaining = deadline - now();
      const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(Math.min(options.timeoutMs, remaining))));
      const init: RequestInit = {
        method: "POST",
        headers: { "Content-Type": "application/json", ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }), ...headers },
        body,
        agent: agentFor,
        redirect: "manual",
        signal: (stopping === undefined ? timeout : AbortSignal.any([timeout, stopping])) as RequestInit["signal"],
      };
      let failure: string;
      let status: number | undefined;
      let hintMs: number | undefined;
      try {
        const response = await fetch(url, init);
        status = response.status;
        // The status line is the answer: once it says 2xx, the message is delivered, whatever the body does.
        if (response.ok) return { ok: true, attempts: attempt, ...(await answerOf(response, wantAnswer)) };
        failure = `Optune answered ${response.status} ${http.STATUS_CODES[response.status] ?? ""}`.trimEnd();
        const text = await boundedText(response, MAX_EXCERPT_BYTES).catch(() => "");
        log.warn("optune answered an error", { url, attempt, status: response.status, answer: redact(text, token) });
        if (!RETRYABLE_STATUS.has(response.status)) return { ok: false, error: failure, attempts: attempt, status };
        hintMs = retryAfterMs(response.headers.get("retry-after"), now());
      } catch (error) {
        const kind = classify(error);
        if (kind === "permanent") {
          const message = redact((error as Error).message ?? String(error), token);
          log.error("cannot build the request to Optune; it will not be retried", { url, error: message });
          return { ok: false, error: `cannot build the request to Optune: ${message}`, attempts: attempt, permanent: true };
        }
        if (stopping?.aborted) return { ok: false, error: SHUTTING_DOWN, attempts: attempt, retryAfterSeconds: 1 };
        failure = kind === "timeout" ? `no answer from Optune within ${options.timeoutMs} ms` : `cannot reach Optune: ${redact((error as Error).message, token)}`;
      }
      // Never sooner than the backoff: a Retry-After of 0 or in the past must not become a storm.
      const waitMs = Math.max(backoffMs(attempt, random()), hintMs ?? 0);
      const left = deadline - now();
      if (waitMs >= left) {
        log.warn("optune delivery gave up", { url, attempts: attempt, error: failure });
        return { ok: false, error: failure, attempts: attempt, retryAfterSeconds: retryAfterSeconds(waitMs), ...(status === undefined ? {} : { status }) };
      }
      log.warn("optune delivery attempt failed, retrying", { url, attempt, error: failure, retryInMs: Math.round(waitMs) });
      await sleep(waitMs, stopping);
    }
  };
}

/** The answer's body when asked for (bounded; a body that fails or is cut off counts as none); else it is drained in the background. */
async function answerOf(response: Response, wantAnswer: boolean): Promise<{ answer?: string }> {
  if (!wantAnswer) {
    void boundedText(response, MAX_EXCERPT_BYTES).catch(() => undefined);
    return {};
  }
  try {
    const text = await boundedText(response, MAX_ANSWER_BYTES, true);
    return { answer: text };
  } catch {
    return {};
  }
}

class AnswerTooLong extends Error {}

/**
 * At most `limit` bytes of the body, as text; beyond that the connection is dropped. With
 * `strict`, a body longer than the limit is an error rather than cut.
 */
async function boundedText(response: Response, limit: number, strict = false): Promise<string> {
  const stream = response.body;
  if (stream === null) return "";
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = chunk as Buffer;
    chunks.push(bytes);
    size += bytes.length;
    if (size > limit) {
      (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
      if (strict) throw new AnswerTooLong();
      break;
    }
  }
  return Buffer.concat(chunks, size).subarray(0, limit).toString("utf8");
}

/** A timeout, a network failure worth retrying, or a request we could not even build. */
function classify(error: unknown): "timeout" | "network" | "permanent" {
  const err = error as { name?: string; type?: string };
  if (err.name === "AbortError" || err.name === "TimeoutError") return "timeout";
  // node-fetch wraps every socket-level failure in a FetchError; a TypeError is a request we built wrong.
  if (err.name === "FetchError" || err.type === "system") return "network";
  return error instanceof TypeError ? "permanent" : "network";
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

/** Header values must be visible ASCII; a pod uid that is not (a hand-written pod) is not sent as a key. */
const HEADER_SAFE = /^[\x21-\x7e]{1,256}$/;

/** The one place a message becomes a request: URL, body, headers; or a printed line in a dry run. */
export function createDeliver(options: DeliverOptions): Deliver {
  return async (message) => {
    const url = targetUrl(options.optuneUrl, options.account, message.appId);
    const line = () => options.print(`${JSON.stringify({ url, message: message.body })}\n`);
    if (options.dryRun) {
      line();
      return { ok: true, attempts: 0, dryRun: true };
    }
    const key = message.idempotencyKey;
    const headers: Record<string, string> = key !== undefined && HEADER_SAFE.test(key) ? { "Idempotency-Key": key } : {};
    const result = await options.post(url, JSON.stringify(message.body), headers, {
      wantAnswer: message.wantAnswer === true,
      ...(message.deadlineMs === undefined ? {} : { deadlineMs: message.deadlineMs }),
    });
    if (result.ok && options.echo === true) line();
    return result;
  };
}

export interface OptuneIo {
  readonly print: (line: string) => void;
  readonly echo?: boolean;
  readonly log: Logger;
  /** Aborted when the process must stop: deliveries in flight end at once. */
  readonly signal?: AbortSignal;
}

export interface OptuneClient {
  /** Deliveries within OPTUNE_SEND_DEADLINE, ended by the signal. */
  readonly deliver: Deliver;
  /** Deliveries within a shorter deadline that the signal does not end (GOODBYE, after it fired). */
  readonly deliverWithin: (deadlineMs: number) => Deliver;
  /** Stops watching the token file. */
  readonly close: () => void;
}

/** The Optune client as the configuration says: URL, account, token (rotated), dry run, timeouts. Both halves use it. */
export function connectOptune(config: Config, io: OptuneIo): OptuneClient {
  const token = tokenSource(config.authToken, config.authTokenFile, io.log);
  const deliverWithin = (deadlineMs: number, signal?: AbortSignal) =>
    createDeliver({
      optuneUrl: config.optuneUrl,
      account: config.account,
      dryRun: config.dryRun,
      print: io.print,
      ...(io.echo === undefined ? {} : { echo: io.echo }),
      post: createPost({ token: token.current, timeoutMs: Math.min(config.sendTimeoutMs, deadlineMs), deadlineMs, log: io.log, ...(signal === undefined ? {} : { signal }) }),
    });
  return { deliver: deliverWithin(config.sendDeadlineMs, io.signal), deliverWithin: (deadlineMs) => deliverWithin(deadlineMs), close: token.stop };
}
