// The function's HTTP server: CloudEvents in on POST /, an answer the event source understands out.
// 2xx = done (sent, ignored or already reported); 503 + Retry-After = send it again later
// (a direct ApiServerSource sink retries 502/503/504/429, never 500); 400 = malformed, never resend.
import http from "node:http";
import { createEdge, reply, SERVER_TIMEOUTS, type ServerTimeouts } from "../http-edge.js";
import type { Logger } from "../log.js";
import { metricsEndpoint, noMetrics, type MetricsRegistry } from "../metrics.js";
import { MAX_RETRY_AFTER_SECONDS } from "../optune.js";
import { decodeHttpRequest, MalformedEvent, type CloudEvent } from "./cloudevent.js";
import { retryAfterSeconds, type Handler, type Outcome } from "./handle.js";
import type { OutcomeLog } from "./outcome-log.js";
import { eventClass, interpretEvent } from "./pod-event.js";

export interface ServerDeps {
  readonly handle: Handler;
  readonly log: Logger;
  readonly outcomes: OutcomeLog;
  readonly maxBodyBytes?: number;
  /** SERVER_TIMEOUTS, unless a test needs them shorter. */
  readonly timeouts?: ServerTimeouts;
  /** Counts every event, and serves GET /metrics. */
  readonly metrics?: MetricsRegistry;
}

export function createHttpServer(deps: ServerDeps): http.Server & { readonly idle: () => Promise<void> } {
  const metrics = deps.metrics ?? noMetrics;
  const edge = createEdge({
    log: deps.log,
    path: "/",
    hint: "POST CloudEvents to /",
    post: receive,
    ...(deps.metrics === undefined ? {} : { get: { "/metrics": metricsEndpoint(deps.metrics) } }),
    ...(deps.maxBodyBytes === undefined ? {} : { maxBodyBytes: deps.maxBodyBytes }),
  });
  const server = http.createServer(deps.timeouts ?? SERVER_TIMEOUTS, edge.listener);

  async function receive(request: http.IncomingMessage, response: http.ServerResponse, body: Buffer): Promise<void> {
    const started = performance.now();
    let decoded;
    try {
      decoded = decodeHttpRequest(request.headers, body);
    } catch (error) {
      if (!(error instanceof MalformedEvent)) throw error;
      deps.log.warn("malformed event rejected", { error: error.message, ceId: request.headers["ce-id"] });
      metrics.event(typeof request.headers["ce-type"] === "string" ? eventClass(request.headers["ce-type"]) : "other", "malformed");
      return reply(response, 400, { error: error.message });
    }
    // Each event is handled on its own: in a batch, one malformed item does not stop the others.
    const outcomes: Outcome[] = [];
    for (const item of decoded.events) {
      const itemStarted = decoded.batch ? performance.now() : started;
      const outcome = await handleItem(item);
      const malformed = item instanceof MalformedEvent;
      metrics.event(malformed ? "other" : eventClass(item.type), outcome.kind);
      deps.outcomes.record(outcome, malformed ? {} : { ceId: item.id, ceType: item.type, elapsedMs: round(performance.now() - itemStarted) });
      outcomes.push(outcome);
    }
    return answer(response, outcomes, decoded.batch);
  }

  async function handleItem(item: CloudEvent | MalformedEvent): Promise<Outcome> {
    if (item instanceof MalformedEvent) return { kind: "malformed", error: item.message };
    try {
      return await deps.handle(interpretEvent(item));
    } catch (error) {
      if (error instanceof MalformedEvent) return { kind: "malformed", error: error.message };
      throw error;
    }
  }

  return Object.assign(server, { idle: edge.idle });
}

/**
 * 503 + Retry-After when any event should be sent again; 400 when every item was malformed; 422
 * when nothing can ever be done with them (a Broker dead-letters those); else 200.
 */
export function answerStatus(outcomes: readonly Outcome[]): { status: number; retryAfter?: number } {
  let retryAfter: number | undefined;
  let malformed = 0;
  let undeliverable = 0;
  for (const outcome of outcomes) {
    const seconds = retryAfterSeconds(outcome);
    if (seconds !== undefined) retryAfter = Math.max(retryAfter ?? 0, seconds);
    if (outcome.kind === "malformed") malformed++;
    if (outcome.kind === "undeliverable") undeliverable++;
  }
  if (retryAfter !== undefined) return { status: 503, retryAfter: Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(retryAfter))) };
  if (malformed === outcomes.length) return { status: 400 };
  if (malformed + undeliverable === outcomes.length) return { status: 422 };
  return { status: 200 };
}

function answer(response: http.ServerResponse, outcomes: readonly Outcome[], batch: boolean): void {
  const { status, retryAfter } = answerStatus(outcomes);
  const summary = batch ? { outcomes: outcomes.map(described) } : described(outcomes[0]!);
  reply(response, status, summary, retryAfter === undefined ? undefined : { "Retry-After": String(retryAfter) });
}

/** An outcome as the event source reads it: `outcome` names what happened. */
function described({ kind, ...rest }: Outcome): object {
  return { outcome: kind, ...rest };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
