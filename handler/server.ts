// The HTTP edge: CloudEvents in on POST /, an answer the event source understands out.
// 2xx = done (sent, ignored or already reported); 503 + Retry-After = send it again later
// (a direct ApiServerSource sink retries 502/503/504/429, never 500); 400 = malformed, never resend.
import http from "node:http";
import { decodeHttpRequest, MalformedEvent } from "./cloudevent.js";
import { logOutcome, retryAfterSeconds, type Handler, type Outcome } from "./handle.js";
import type { Logger } from "./log.js";
import { interpretEvent } from "./pod-event.js";

/** Generous for Pods: the API server stores objects up to ~1.5 MiB. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface ServerDeps {
  readonly handle: Handler;
  readonly log: Logger;
  readonly maxBodyBytes?: number;
}

/** Liveness, readiness, and the path OpenFaaS probes. */
const HEALTH_PATHS = new Set(["/healthz", "/readyz", "/_/health"]);

class BodyTooLarge extends Error {}

export function createHttpServer(deps: ServerDeps): http.Server & { readonly idle: () => Promise<void> } {
  const maxBodyBytes = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  let active = 0;
  const waiters: Array<() => void> = [];

  const server = http.createServer((request, response) => {
    active++;
    route(request, response)
      .catch((error: Error) => {
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
    if (path !== "/") return reply(response, 404, { error: `no such path ${path}: POST CloudEvents to /` });
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
    let events;
    try {
      decoded = decodeHttpRequest(request.headers, body);
      events = decoded.events.map(interpretEvent);
    } catch (error) {
      if (!(error instanceof MalformedEvent)) throw error;
      deps.log.warn("malformed event rejected", { error: error.message, ceId: request.headers["ce-id"] });
      return reply(response, 400, { error: error.message });
    }

    const outcomes: Outcome[] = [];
    for (const [index, event] of events.entries()) {
      const eventStarted = index === 0 ? started : performance.now();
      const outcome = await deps.handle(event);
      const source = decoded.events[index];
      logOutcome(deps.log, outcome, { ceId: source?.id, ceType: source?.type, elapsedMs: round(performance.now() - eventStarted) });
      outcomes.push(outcome);
    }

    const retries = outcomes.map(retryAfterSeconds).filter((seconds) => seconds !== undefined);
    const status = retries.length > 0 ? 503 : 200;
    const headers = retries.length > 0 ? { "Retry-After": String(Math.max(...retries)) } : undefined;
    const summary = outcomes.map(({ kind, ...rest }) => ({ outcome: kind, ...rest }));
    return reply(response, status, decoded.batch ? { outcomes: summary } : summary[0] ?? {}, headers);
  }

  const idle = () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)));
  return Object.assign(server, { idle });
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
    request.once("error", reject);
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
