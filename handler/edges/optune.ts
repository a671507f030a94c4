// The Optune client, shared by both halves (SPEC.md section 4, ADJUST.md section 1): one POST per
// message, retried on network errors, timeouts, 408, 429, 500, 502, 503 and 504 with exponential
// backoff and jitter, never sooner than the backoff whatever Retry-After says, within a bounded
// total time. Other answers are never retried. What comes back from the remote is untrusted: it
// is read up to a bound, redacted of the token, logged as an excerpt, and never handed back to
// the event source.
import http from "node:http";
import type { Config } from "./config.js";
import type { Logger } from "./log.js";
import { noMetrics, statusClass, type Metrics } from "./metrics.js";
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
  readonly metrics?: Metrics;
}

export type Post = (url: string, body: string, headers: Readonly<Record<string, string>>, options?: { readonly wantAnswer?: boolean; readonly deadlineMs?: number }) => Promise<DeliveryResult>;

// One keep-alive pool per process: deliveries to the same host reuse connections. node:https (TLS)
// is loaded on the first https delivery, not at start.
const httpAgent = new http.Agent({ keepAlive: true });
let httpsAgent: Promise<{ agent: http.Agent; request: typeof http.request }> | undefined;
const HTTP = { agent: httpAgent, request: http.request };
const transport = (url: URL) =>
  url.protocol === "http:" ? HTTP : (httpsAgent ??= import("node:https").then(({ default: https }) => ({ agent: new https.Agent({ keepAlive: true }), request: https.request })));

/**
 * `make`, remembered for the last keys (at most `max`, then forgotten all at once): what a
 * delivery derives from its app id is derived once per app, not per message (the target URL and
 * its parse cost ~4 µs per message).
 */
function remembered<V>(make: (key: string) => V, max = 1024): (key: string) => V {
  const values = new Map<string, V>();
  return (key) => {
    let value = values.get(key);
    if (value === undefined) {
      value = make(key);
      if (values.size >= max) values.clear();
      values.set(key, value);
    }
    return value;
  };
}

/**
 * What node:http needs of a target URL, derived once: given the URL itself, node converts it on
 * every request (urlToHttpOptions, ~3.5 µs of a job admission's 190). As that conversion does: an
 * IPv6 host without its brackets, the query in the path, credentials in the URL as `auth`.
 */
const requestTarget = remembered((url) => {
  const parsed = new URL(url);
  const hostname = parsed.hostname.startsWith("[") ? parsed.hostname.slice(1, -1) : parsed.hostname;
  const credentials = parsed.username === "" && parsed.password === "" ? {} : { auth: `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}` };
  return { url: parsed, options: { protocol: parsed.protocol, hostname, path: `${parsed.pathname}${parsed.search}`, ...(parsed.port === "" ? {} : { port: Number(parsed.port) }), ...credentials } };
});

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
/** The least time worth giving an attempt: Optune answers in a few ms, a hung one never. */
const MIN_ATTEMPT_MS = 100;

/** How one attempt ended. `text`: a 2xx's whole answer (when asked for and not longer than the bound), or an error's excerpt. */
type Attempt =
  | { readonly kind: "answered"; readonly status: number; readonly retryAfter: string | undefined; readonly text: string | undefined }
  | { readonly kind: "timeout" | "stopped" }
  | { readonly kind: "network" | "permanent"; readonly message: string };

/**
 * One POST with node:http, within `timeoutMs`. A 2xx is delivered at its status line: its body is
 * read only when asked for (a command), else drained, and never more than a bound is kept; a body
 * still coming at the timeout is cut off. An error's body is kept as an excerpt for the log.
 */
async function attempt(url: string, body: string, headers: Readonly<Record<string, string>>, timeoutMs: number, stopping: Set<() => void>, wantAnswer: boolean): Promise<Attempt> {
  let target: ReturnType<typeof requestTarget>;
  let client: Awaited<ReturnType<typeof transport>>;
  try {
    target = requestTarget(url);
    const chosen = transport(target.url);
    client = chosen === HTTP ? HTTP : await chosen;
  } catch (error) {
    return { kind: "permanent", message: (error as Error).message };
  }
  return new Promise<Attempt>((resolve) => {
    let settled: Attempt | undefined;
    let status = 0;
    let retryAfter: string | undefined;
    let request: http.ClientRequest;
    const finish = (outcome: Attempt) => {
      if (settled !== undefined) return;
      settled = outcome;
      stopping.delete(onStop);
      resolve(outcome);
    };
    const close = () => {
      clearTimeout(timer);
      request.destroy();
    };
    // One timer for the whole exchange: the answer's status line, then whatever body is read.
    const timer = setTimeout(() => {
      finish(status >= 200 && status < 300 ? { kind: "answered", status, retryAfter, text: undefined } : status > 0 ? { kind: "answered", status, retryAfter, text: "" } : { kind: "timeout" });
      close();
    }, timeoutMs);
    const onStop = () => {
      finish({ kind: "stopped" });
      close();
    };
    try {
      request = client.request({ ...target.options, method: "POST", agent: client.agent, headers: { ...headers, "Content-Length": String(Buffer.byteLength(body)) } });
    } catch (error) {
      clearTimeout(timer);
      return resolve({ kind: "permanent", message: (error as Error).message });
    }
    stopping.add(onStop);
    request.once("error", (error) => {
      clearTimeout(timer);
      finish({ kind: "network", message: error.message });
    });
    request.once("response", (response) => {
      status = response.statusCode ?? 0;
      const header = response.headers["retry-after"];
      retryAfter = Array.isArray(header) ? header[0] : header;
      const ok = status >= 200 && status < 300;
      // The status line is the answer: once it says 2xx, the message is delivered, whatever the body does.
      if (ok && !wantAnswer) finish({ kind: "answered", status, retryAfter, text: undefined });
      const limit = ok ? MAX_ANSWER_BYTES : MAX_EXCERPT_BYTES;
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (ok && !wantAnswer) return void (size > MAX_EXCERPT_BYTES && close());
        if (size <= limit) return void chunks.push(chunk);
        // More than a command or an excerpt: keep what is needed and drop the connection.
        chunks.push(chunk.subarray(0, limit - (size - chunk.length)));
        finish({ kind: "answered", status, retryAfter, text: ok ? undefined : Buffer.concat(chunks).toString("utf8") });
        close();
      });
      response.once("end", () => {
        clearTimeout(timer);
        finish({ kind: "answered", status, retryAfter, text: Buffer.concat(chunks).toString("utf8") });
      });
      response.once("error", () => finish({ kind: "answered", status, retryAfter, text: ok ? undefined : Buffer.concat(chunks).toString("utf8") }));
    });
    request.end(body);
  });
}

/** POSTs JSON with retries; resolves (never rejects) with the outcome. */
export function createPost(options: SenderOptions): Post {
  const sleep = options.sleep ?? sleepFor;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const { signal: stopping, log } = options;
  const metrics = options.metrics ?? noMetrics;
  // The attempts in flight, ended together when the function stops: one listener on the signal,
  // not one added and removed per attempt.
  const live = new Set<() => void>();
  stopping?.addEventListener("abort", () => {
    for (const stop of [...live]) stop();
  }, { once: true });

  return async (url, body, headers, { wantAnswer = false, deadlineMs = options.deadlineMs } = {}) => {
    const deadline = now() + Math.min(deadlineMs, options.deadlineMs);
    const token = options.token();
    const requestHeaders = { "Content-Type": "application/json", ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }), ...headers };
    for (let number = 1; ; number++) {
      if (stopping?.aborted) return { ok: false, error: SHUTTING_DOWN, attempts: number - 1, retryAfterSeconds: 1 };
      const timeoutMs = Math.max(1, Math.ceil(Math.min(options.timeoutMs, deadline - now())));
      const started = performance.now();
      const outcome = await attempt(url, body, requestHeaders, timeoutMs, live, wantAnswer);
      if (outcome.kind !== "stopped" && outcome.kind !== "permanent") {
        metrics.optuneAttempt(outcome.kind === "answered" ? statusClass(outcome.status) : outcome.kind === "timeout" ? "timeout" : "error", (performance.now() - started) / 1000);
      }
      let failure: string;
      let status: number | undefined;
      let hintMs: number | undefined;
      switch (outcome.kind) {
        case "answered": {
          status = outcome.status;
          if (status >= 200 && status < 300) return { ok: true, attempts: number, ...(wantAnswer && outcome.text !== undefined ? { answer: outcome.text } : {}) };
          failure = `Optune answered ${status} ${http.STATUS_CODES[status] ?? ""}`.trimEnd();
          log.warn("optune answered an error", { url, attempt: number, status, answer: redact(outcome.text ?? "", token) });
          if (!RETRYABLE_STATUS.has(status)) return { ok: false, error: failure, attempts: number, status };
          hintMs = retryAfterMs(outcome.retryAfter, now());
          break;
        }
        case "permanent": {
          const message = redact(outcome.message, token);
          log.error("cannot build the request to Optune; it will not be retried", { url, error: message });
          return { ok: false, error: `cannot build the request to Optune: ${message}`, attempts: number, permanent: true };
        }
        case "stopped":
          return { ok: false, error: SHUTTING_DOWN, attempts: number, retryAfterSeconds: 1 };
        case "timeout":
          failure = `no answer from Optune within ${timeoutMs} ms`;
          break;
        case "network":
          failure = `cannot reach Optune: ${redact(outcome.message, token)}`;
          break;
      }
      // Never sooner than the backoff: a Retry-After of 0 or in the past must not become a storm.
      const waitMs = Math.max(backoffMs(number, random()), hintMs ?? 0);
      const left = deadline - now();
      // A retry needs time for an answer too: one that could only time out is not made.
      if (waitMs + Math.min(options.timeoutMs, MIN_ATTEMPT_MS) > left) {
        log.warn("optune delivery gave up", { url, attempts: number, error: failure });
        return { ok: false, error: failure, attempts: number, retryAfterSeconds: retryAfterSeconds(waitMs), ...(status === undefined ? {} : { status }) };
      }
      log.warn("optune delivery attempt failed, retrying", { url, attempt: number, error: failure, retryInMs: Math.round(waitMs) });
      metrics.optuneRetry();
      await sleep(waitMs, stopping);
      if (stopping?.aborted) return { ok: false, error: SHUTTING_DOWN, attempts: number, retryAfterSeconds: 1 };
    }
  };
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
  readonly metrics?: Metrics;
}

/** Which kind of message a body is, for the messages metric. */
function messageKind(body: object): string {
  const event = (body as { event?: unknown }).event;
  return event === "MEASUREMENT" ? "measurement" : event === "HELLO" || event === "GOODBYE" ? "lifecycle" : "adjust";
}

/** Header values must be visible ASCII; a pod uid that is not (a hand-written pod) is not sent as a key. */
const HEADER_SAFE = /^[\x21-\x7e]{1,256}$/;

/** The one place a message becomes a request: URL, body, headers; or a printed line in a dry run. */
export function createDeliver(options: DeliverOptions): Deliver {
  const metrics = options.metrics ?? noMetrics;
  const urlOf = remembered((appId) => targetUrl(options.optuneUrl, options.account, appId));
  return async (message) => {
    const url = urlOf(message.appId);
    const line = () => options.print(`${JSON.stringify({ url, message: message.body })}\n`);
    if (options.dryRun) {
      line();
      metrics.message(messageKind(message.body), "printed");
      return { ok: true, attempts: 0, dryRun: true };
    }
    const key = message.idempotencyKey;
    const headers: Record<string, string> = key !== undefined && HEADER_SAFE.test(key) ? { "Idempotency-Key": key } : {};
    const result = await options.post(url, JSON.stringify(message.body), headers, {
      wantAnswer: message.wantAnswer === true,
      ...(message.deadlineMs === undefined ? {} : { deadlineMs: message.deadlineMs }),
    });
    if (result.ok && options.echo === true) line();
    metrics.message(messageKind(message.body), result.ok ? "sent" : "failed");
    return result;
  };
}

export interface OptuneIo {
  readonly print: (line: string) => void;
  readonly echo?: boolean;
  readonly log: Logger;
  /** Aborted when the process must stop: deliveries in flight end at once. */
  readonly signal?: AbortSignal;
  readonly metrics?: Metrics;
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
      ...(io.metrics === undefined ? {} : { metrics: io.metrics }),
      post: createPost({ token: token.current, timeoutMs: Math.min(config.sendTimeoutMs, deadlineMs), deadlineMs, log: io.log, ...(signal === undefined ? {} : { signal }), ...(io.metrics === undefined ? {} : { metrics: io.metrics }) }),
    });
  return { deliver: deliverWithin(config.sendDeadlineMs, io.signal), deliverWithin: (deadlineMs) => deliverWithin(deadlineMs), close: token.stop };
}
