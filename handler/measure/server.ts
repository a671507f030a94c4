// The HTTP edge: CloudEvents in on POST /, an answer the event source understands out.
// 2xx = done (sent, ignored or already reported); 503 + Retry-After = send it again later
// (a direct ApiServerSource sink retries 502/503/504/429, never 500); 400 = malformed, never resend.
import http from "node:http";
import { decodeHttpRequest, MalformedEvent, type CloudEvent } from "./cloudevent.js";
import { retryAfterSeconds, type Handler, type Outcome } from "./handle.js";
import type { Logger } from "../log.js";
import { MAX_RETRY_AFTER_SECONDS } from "../optune.js";
import type { OutcomeLog } from "./outcome-log.js";
import { clip } from "../pod.js";
import { interpretEvent } from "./pod-event.js";

/** Generous for Pods: the API server stores objects up to ~1.5 MiB. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface ServerDeps {
  readonly handle: Handler;
  readonly log: Logger;
  readonly outcomes: OutcomeLog;
  readonly maxBodyBytes?: number;
  /** SERVER_TIMEOUTS, unless a test needs them shorter. */
  readonly timeouts?: { readonly headersTimeout: number; readonly requestTimeout: number; readonly connectionsCheckingInterval: number };
}

/**
 * Slow clients cannot hold the server: the headers must arrive within 10 s and the whole request
 * within 30 s (slowloris, bodies that never end), checked every second.
 */
export const SERVER_TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1_000 } as const;

/** Liveness, readiness, and the path OpenFaaS probes. */
const HEALTH_PATHS = new Set(["/healthz", "/readyz", "/_/health"]);

class BodyTooLarge extends Error {}
/** The client closed the connection (or the server's request timeout did) before the body ended. */
class ClientGone extends Error {}

export function createHttpServer(deps: ServerDeps): http.Server & { readonly idle: () => Promise<void> } {
  const maxBodyBytes = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  let active = 0;
  const waiters: Array<() => void> = [];

  const server = http.createServer(deps.timeouts ?? SERVER_TIMEOUTS, (request, response) => {
    active++;
    route(request, response)
      .catch((error: Error) => {
        if (error instanceof ClientGone) return deps.log.debug("client went away before its request ended", { url: clip(request.url ?? "") });
        deps.log.error("request failed", { error: error.stack ?? error.message });
        if (!response.headersSent) reply(response, 500, { error: "internal error" });
      })
      .finally(() => {
        if (--active === 0) for (const resolve of waiters.splice(0)) resolve();
      });
  });

  async function route(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const path = (request.url ?? "/").split("?", 1)[0];
    const method = request.method ?? "GET";
    if (HEALTH_PATHS.has(path ?? "")) {
      if (method !== "GET" && method !== "HEAD") return reply(response, 405, { error: "use GET" }, { Allow: "GET, HEAD" });
      return reply(response, 200, { status: "ok" });
    }
    if (path !== "/") return reply(response, 404, { error: `no such path ${clip(path ?? "")}: POST CloudEvents to /` });
    if (method !== "POST") return reply(response, 405, { error: "POST CloudEvents to /" }, { Allow: "POST" });
    return receive(request, response);
  }

  async function receive(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const encoding = request.headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      request.resume();
      return reply(response, 415, { error: `content-encoding ${encoding} is not supported` });
    }
    let body: Buffer;
    try {
      body = await readBody(request, maxBodyBytes);
    } catch (error) {
      if (!(error instanceof BodyTooLarge)) throw error;
      request.resume(); // drain and discard the rest so the client reads our answer
      return reply(response, 413, { error: `body is larger than ${maxBodyBytes} bytes` }, { Connection: "close" });
    }

    let decoded;
    try {
      decoded = decodeHttpRequest(request.headers, body);
    } catch (error) {
      if (!(error instanceof MalformedEvent)) throw error;
      deps.log.warn("malformed event rejected", { error: error.message, ceId: request.headers["ce-id"] });
      return reply(response, 400, { error: error.message });
    }
    if (!decoded.batch) {
      const [event] = decoded.events;
      if (event instanceof MalformedEvent || event === undefined) throw new Error("a single event decodes to one CloudEvent");
      let podEvent;
      try {
        podEvent = interpretEvent(event);
      } catch (error) {
        if (!(error instanceof MalformedEvent)) throw error;
        deps.log.warn("malformed event rejected", { error: error.message, ceId: event.id, ceType: event.type });
        return reply(response, 400, { error: error.message });
      }
      const outcome = await deps.handle(podEvent);
      deps.outcomes.record(outcome, { ceId: event.id, ceType: event.type, elapsedMs: round(performance.now() - started) });
      return answer(response, [outcome], false);
    }

    // A batch: each item is handled on its own; one malformed item does not stop the others.
    const outcomes: Outcome[] = [];
    for (const item of decoded.events) {
      const itemStarted = performance.now();
      const outcome = await handleItem(item);
      deps.outcomes.record(outcome, item instanceof MalformedEvent ? {} : { ceId: item.id, ceType: item.type, elapsedMs: round(performance.now() - itemStarted) });
      outcomes.push(outcome);
    }
    return answer(response, outcomes, true);
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

  const idle = () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)));
  return Object.assign(server, { idle });
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
  const summary = outcomes.map(({ kind, ...rest }) => ({ outcome: kind, ...rest }));
  reply(response, status, batch ? { outcomes: summary } : (summary[0] ?? {}), retryAfter === undefined ? undefined : { "Retry-After": String(retryAfter) });
}

function readBody(request: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers["content-length"]);
  if (declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.off("data", onData);
        reject(new BodyTooLarge());
      } else chunks.push(chunk);
    };
    request.on("data", onData);
    request.once("end", () => resolve(Buffer.concat(chunks, size)));
    request.once("error", () => reject(new ClientGone()));
    request.once("close", () => reject(new ClientGone())); // no effect once "end" resolved it
  });
}

function reply(response: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...headers });
  response.end(text);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
