// The function's HTTP server: CloudEvents in on POST /, an answer the event source understands out.
// 200 = done (sent, ignored or already reported); 503 + Retry-After = send it again later, when the
// source still retries then (a direct ApiServerSource sink retries 502/503/504/429, never 500, for
// ~3 s: OPTUNE_SOURCE_RETRY_WINDOW); 202 = not done, and a retry would come too soon: the sweep
// sends it once the pod's backoff is over; 400 = malformed, never resend;
// 401 = no valid event token (with OPTUNE_EVENT_AUDIENCE), decided before the body is read;
// 413 = too big a body or batch.
import http from "node:http";
import { createEdge, guardConnections, nodeTimeouts, reply, SERVER_TIMEOUTS, type ConnectionLimits, type Refusal, type ServerTimeouts } from "../edges/http-edge.js";
import { clip } from "../jobs/pod.js";
import type { Logger } from "../edges/log.js";
import { metricsEndpoint, noMetrics, type MetricsRegistry } from "../edges/metrics.js";
import { MAX_RETRY_AFTER_SECONDS } from "../edges/optune.js";
import { BatchTooLarge, decodeHttpRequest, MalformedEvent, type CloudEvent } from "./cloudevent.js";
import type { EventAuthenticator } from "./event-auth.js";
import { retryAfterSeconds, type Handler, type Outcome, type OutcomeCode } from "./handle.js";
import type { OutcomeLog } from "./outcome-log.js";
import { eventClass, interpretEvent } from "./pod-event.js";

export interface ServerDeps {
  readonly handle: Handler;
  readonly log: Logger;
  readonly outcomes: OutcomeLog;
  readonly maxBodyBytes?: number;
  /** MAX_BODY_BYTES_IN_FLIGHT, unless a test needs it smaller. */
  readonly maxBodyBytesInFlight?: number;
  /** SERVER_TIMEOUTS, unless a test needs them shorter. */
  readonly timeouts?: ServerTimeouts;
  /** CONNECTION_LIMITS, unless a test needs them smaller. */
  readonly connectionLimits?: ConnectionLimits;
  /** Counts every event, and serves GET /metrics. */
  readonly metrics?: MetricsRegistry;
  /** With OPTUNE_EVENT_AUDIENCE: who sent the request; a request without a valid token changes nothing. */
  readonly authenticate?: EventAuthenticator;
  readonly now?: () => number;
  /** OPTUNE_SOURCE_RETRY_WINDOW in seconds: beyond it a retry is the sweep's, answered 202 (default: always 503). */
  readonly retryWindowSeconds?: number;
}

export function createHttpServer(deps: ServerDeps): http.Server & { readonly idle: () => Promise<void>; readonly bodyBytesInFlight: () => number } {
  const metrics = deps.metrics ?? noMetrics;
  const timeouts = deps.timeouts ?? SERVER_TIMEOUTS;
  const edge = createEdge({
    log: deps.log,
    path: "/",
    hint: "POST CloudEvents to /",
    post: receive,
    bodyTimeoutMs: timeouts.bodyTimeout,
    ...(deps.authenticate === undefined ? {} : { screen: authorize }),
    ...(deps.metrics === undefined ? {} : { get: { "/metrics": metricsEndpoint(deps.metrics) } }),
    ...(deps.maxBodyBytes === undefined ? {} : { maxBodyBytes: deps.maxBodyBytes }),
    ...(deps.maxBodyBytesInFlight === undefined ? {} : { maxBodyBytesInFlight: deps.maxBodyBytesInFlight }),
  });
  const server = http.createServer(nodeTimeouts(timeouts), edge.listener);
  guardConnections(server, deps.connectionLimits);
  const now = deps.now ?? Date.now;
  let refusedSince = 0;
  let lastRefusalLog = -Infinity;

  /** With OPTUNE_EVENT_AUDIENCE: the sender's token is checked from the headers, before the body is read. */
  async function authorize(request: http.IncomingMessage): Promise<Refusal | undefined> {
    const auth = await deps.authenticate!(request.headers.authorization);
    if (auth.ok) return undefined;
    metrics.event(typeof request.headers["ce-type"] === "string" ? eventClass(request.headers["ce-type"]) : "other", auth.status === 401 ? "unauthenticated" : "failed");
    // One line a minute: a flood of forged events must not flood the log. The token is never in it.
    refusedSince++;
    if (now() - lastRefusalLog >= 60_000) {
      deps.log.warn(auth.status === 401 ? "event refused: no valid token for this function's audience" : "event not checked", { reason: auth.reason, refusedSinceLastLine: refusedSince, ceId: clipped(request.headers["ce-id"]) });
      lastRefusalLog = now();
      refusedSince = 0;
    }
    return auth.status === 401
      ? { status: 401, body: { error: auth.reason }, headers: { "WWW-Authenticate": 'Bearer error="invalid_token"' } }
      : { status: 503, body: { error: auth.reason }, headers: { "Retry-After": String(auth.retryAfterSeconds ?? 5) } };
  }

  async function receive(request: http.IncomingMessage, response: http.ServerResponse, body: Buffer): Promise<void> {
    const started = performance.now();
    let decoded;
    try {
      decoded = decodeHttpRequest(request.headers, body);
    } catch (error) {
      if (error instanceof BatchTooLarge) {
        deps.log.warn("batch refused", { error: error.message });
        return reply(response, 413, { error: error.message });
      }
      if (!(error instanceof MalformedEvent)) throw error;
      deps.log.warn("malformed event rejected", { error: error.message, ceId: clipped(request.headers["ce-id"]) });
      metrics.event(typeof request.headers["ce-type"] === "string" ? eventClass(request.headers["ce-type"]) : "other", "malformed");
      return reply(response, 400, { error: error.message });
    }
    // The sender went away (a PingSource gives up after its timeout): a sweep, the only work that
    // waits for nobody else, may stop. Watched only for requests that ask for one (an
    // AbortController for every event cost ~5 % of its CPU).
    const gone = decoded.events.some(isPing) ? senderGone(response) : undefined;
    // Each event is handled on its own: in a batch, one malformed item does not stop the others.
    const outcomes: Outcome[] = [];
    // The pings of one batch share one sweep, as pings that come at the same time do.
    let swept: Outcome | undefined;
    for (const item of decoded.events) {
      const itemStarted = decoded.batch ? performance.now() : started;
      const ping = isPing(item);
      const outcome = ping && swept !== undefined ? swept : await handleItem(item, gone);
      if (ping) swept = outcome;
      const malformed = item instanceof MalformedEvent;
      metrics.event(malformed ? "other" : eventClass(item.type), outcome.kind);
      deps.outcomes.record(outcome, malformed ? {} : { ceId: item.id, ceType: item.type, elapsedMs: round(performance.now() - itemStarted) });
      outcomes.push(outcome);
    }
    return answer(response, outcomes, decoded.batch, deps.retryWindowSeconds);
  }

  async function handleItem(item: CloudEvent | MalformedEvent, signal: AbortSignal | undefined): Promise<Outcome> {
    if (item instanceof MalformedEvent) return { kind: "malformed", error: item.message };
    try {
      return await deps.handle(interpretEvent(item), signal);
    } catch (error) {
      if (error instanceof MalformedEvent) return { kind: "malformed", error: error.message };
      throw error;
    }
  }

  return Object.assign(server, { idle: edge.idle, bodyBytesInFlight: edge.bodyBytesInFlight });
}

const isPing = (item: CloudEvent | MalformedEvent): boolean => !(item instanceof MalformedEvent) && eventClass(item.type) === "ping";

/** Aborted when the client closes the connection before it has the whole answer. */
function senderGone(response: http.ServerResponse): AbortSignal {
  const gone = new AbortController();
  response.once("close", () => {
    if (!response.writableFinished) gone.abort();
  });
  return gone.signal;
}

/**
 * 503 + Retry-After when any event should be sent again and the source will still be retrying
 * then (within `retryWindowSeconds`); 202 when it should, but only later than the source retries
 * (Knative's adapter gives up after ~3 s and ignores Retry-After: the sweep sends it then); 400
 * when every item was malformed; 422 when nothing can ever be done with them (a Broker
 * dead-letters those); else 200.
 */
export function answerStatus(outcomes: readonly Outcome[], retryWindowSeconds = Infinity): { status: number; retryAfter?: number } {
  let retryAfter: number | undefined;
  let malformed = 0;
  let undeliverable = 0;
  for (const outcome of outcomes) {
    const seconds = retryAfterSeconds(outcome);
    if (seconds !== undefined) retryAfter = Math.max(retryAfter ?? 0, seconds);
    if (outcome.kind === "malformed") malformed++;
    if (outcome.kind === "undeliverable") undeliverable++;
  }
  if (retryAfter !== undefined) {
    const seconds = Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(retryAfter)));
    return seconds <= retryWindowSeconds ? { status: 503, retryAfter: seconds } : { status: 202, retryAfter: seconds };
  }
  if (malformed === outcomes.length) return { status: 400 };
  if (malformed + undeliverable === outcomes.length) return { status: 422 };
  return { status: 200 };
}

function answer(response: http.ServerResponse, outcomes: readonly Outcome[], batch: boolean, retryWindowSeconds?: number): void {
  const only = outcomes[0]!;
  // Most events change nothing (ignored, or about a job already reported): their answer is the same bytes every time.
  if (!batch && (only.kind === "ignored" || only.kind === "already-reported")) {
    const { head, body } = constantAnswer(only);
    response.writeHead(200, head);
    return void response.end(body);
  }
  const { status, retryAfter } = answerStatus(outcomes, retryWindowSeconds);
  const summary = batch ? { outcomes: outcomes.map(described) } : described(only);
  reply(response, status, summary, retryAfter === undefined ? undefined : { "Retry-After": String(retryAfter) });
}

/**
 * An outcome as the event source reads it: `outcome` names what happened. An event that changed
 * nothing says only that, and an ignored one its code: the free-text reason (and the pod) are in
 * the debug log, not on the wire.
 */
function described(outcome: Outcome): object {
  if (outcome.kind === "ignored") return { outcome: "ignored", code: outcome.code };
  if (outcome.kind === "already-reported") return { outcome: "already-reported" };
  const { kind, ...rest } = outcome;
  return { outcome: kind, ...rest };
}

/** An outcome whose answer is the same bytes for every event of its code (described() keeps nothing else of it). */
type Unchanged = Extract<Outcome, { kind: "ignored" | "already-reported" }>;

/** The answer to an event that changed nothing, one per code, built at its first use. */
// A string, not a Buffer: node:http then writes the head and the body in one write.
const constantAnswers = new Map<OutcomeCode | "already-reported", { readonly head: Readonly<Record<string, string>>; readonly body: string }>();
function constantAnswer(outcome: Unchanged): { readonly head: Readonly<Record<string, string>>; readonly body: string } {
  const code = outcome.kind === "ignored" ? outcome.code : outcome.kind;
  let built = constantAnswers.get(code);
  if (built === undefined) {
    const body = `${JSON.stringify(described(outcome))}\n`;
    constantAnswers.set(code, (built = { head: { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(body)) }, body }));
  }
  return built;
}

function clipped(header: string | string[] | undefined): string | undefined {
  return typeof header === "string" ? clip(header, 128) : undefined;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
