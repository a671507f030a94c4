// What both servers (the CloudEvents function on HTTP, the admission webhook on HTTPS) do the same
// way at the edge: probes, one POST path, a bounded body, answers as JSON, timeouts against slow
// clients, a count of requests in flight for draining. The halves bring only what a POST means.
import type http from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "./log.js";
import { clip } from "../jobs/pod.js";

/** Generous for Pods: the API server stores objects up to ~1.5 MiB. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * Slow clients cannot hold a server: the headers must arrive within 10 s and the whole request
 * within 30 s (slowloris, bodies that never end), checked every second.
 */
export const SERVER_TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1_000 } as const;
export type ServerTimeouts = { readonly [K in keyof typeof SERVER_TIMEOUTS]: number };

/**
 * Connections that never send a request: closed `silentMs` after they were accepted (on Node 20,
 * headersTimeout starts only at a request's first byte, so a silent socket was held for ever);
 * a TLS handshake must end within `handshakeMs`; above `max` connections, the oldest silent one
 * is closed to make room, so a probe still gets in while a flood holds the slots.
 */
export const CONNECTION_LIMITS = { silentMs: 10_000, handshakeMs: 10_000, max: 1000 } as const;
export type ConnectionLimits = { readonly [K in keyof typeof CONNECTION_LIMITS]: number };

/** Liveness, readiness, and the path OpenFaaS probes. */
const HEALTH_PATHS = new Set(["/healthz", "/readyz", "/_/health"]);

export interface EdgeOptions {
  readonly log: Logger;
  /** The one path that takes POSTs, e.g. "/" or "/mutate", and what a client should be told to send there. */
  readonly path: string;
  readonly hint: string;
  /** What a POST means: `body` is read in full (at most maxBodyBytes). */
  readonly post: (request: http.IncomingMessage, response: http.ServerResponse, body: Buffer) => Promise<void>;
  /** Other GET paths (e.g. /metrics). */
  readonly get?: Readonly<Record<string, (response: http.ServerResponse) => Promise<void> | void>>;
  readonly maxBodyBytes?: number;
  /** Whether /readyz says ready (false while stopping: the endpoint is taken out before the server goes). */
  readonly ready?: () => boolean;
}

export interface Edge {
  readonly listener: http.RequestListener;
  /** Resolves when no request is in flight. */
  readonly idle: () => Promise<void>;
}

class BodyTooLarge extends Error {}
/** The client closed the connection (or the server's request timeout did) before the body ended. */
class ClientGone extends Error {}

/**
 * Applies CONNECTION_LIMITS to a server. The sockets watched are those its requests arrive on:
 * accepted TCP sockets for HTTP, sockets after the handshake for HTTPS (before it, the server's
 * handshakeTimeout holds).
 */
export function guardConnections(server: http.Server, limits: ConnectionLimits = CONNECTION_LIMITS): void {
  const tls = "setSecureContext" in server;
  const silent = new Map<Socket, number>(); // insertion-ordered: the oldest first
  let open = 0;
  server.on("connection", (socket: Socket) => {
    open++;
    socket.once("close", () => open--);
    if (!tls) watch(socket);
    if (open > limits.max) {
      const oldest = silent.keys().next();
      (oldest.done === true ? socket : oldest.value).destroy();
    }
  });
  if (tls) server.on("secureConnection", watch);
  server.on("request", (request: http.IncomingMessage) => silent.delete(request.socket));
  function watch(socket: Socket): void {
    silent.set(socket, Date.now());
    socket.once("close", () => silent.delete(socket));
  }
  const check = setInterval(() => {
    const oldest = Date.now() - limits.silentMs;
    for (const [socket, accepted] of silent) {
      if (accepted > oldest) break;
      silent.delete(socket);
      socket.destroy();
    }
  }, Math.min(1000, limits.silentMs)).unref();
  server.once("close", () => clearInterval(check));
}

export function createEdge(options: EdgeOptions): Edge {
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES;
  const { log } = options;
  let active = 0;
  const waiters: Array<() => void> = [];

  const settled = () => {
    if (--active === 0) for (const resolve of waiters.splice(0)) resolve();
  };
  const listener: http.RequestListener = (request, response) => {
    active++;
    route(request, response).then(settled, (error: Error) => {
      settled();
      if (error instanceof ClientGone) return log.debug("client went away before its request ended", { url: clip(request.url ?? "") });
      log.error("request failed", { error: error.stack ?? error.message });
      if (!response.headersSent) reply(response, 500, { error: "internal error" });
    });
  };

  async function route(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = request.url ?? "/";
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);
    const method = request.method ?? "GET";
    const get =
      path === "/readyz" && options.ready?.() === false ? () => reply(response, 503, { status: "stopping" })
      : HEALTH_PATHS.has(path) ? () => reply(response, 200, { status: "ok" })
      : options.get?.[path];
    if (get !== undefined) {
      if (method !== "GET" && method !== "HEAD") return reply(response, 405, { error: "use GET" }, { Allow: "GET, HEAD" });
      return get(response);
    }
    if (path !== options.path) return reply(response, 404, { error: `no such path ${clip(path)}: ${options.hint}` });
    if (method !== "POST") return reply(response, 405, { error: options.hint }, { Allow: "POST" });
    const encoding = request.headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      request.resume();
      return reply(response, 415, { error: `content-encoding ${clip(encoding, 32)} is not supported` });
    }
    let body: Buffer;
    try {
      body = await readBody(request, maxBodyBytes);
    } catch (error) {
      if (!(error instanceof BodyTooLarge)) throw error;
      request.resume(); // drain and discard the rest so the client reads our answer
      return reply(response, 413, { error: `body is larger than ${maxBodyBytes} bytes` }, { Connection: "close" });
    }
    return options.post(request, response, body);
  }

  const idle = () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)));
  return { listener, idle };
}

function readBody(request: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers["content-length"]);
  if (declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.off("data", onData);
        reject(new BodyTooLarge());
      } else chunks.push(chunk);
    };
    const gone = () => {
      if (!ended) reject(new ClientGone()); // an Error only when it is one: every request closes
    };
    request.on("data", onData);
    request.once("end", () => {
      ended = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    request.once("error", gone);
    request.once("close", gone);
  });
}

export function reply(response: http.ServerResponse, status: number, body: unknown, headers?: Readonly<Record<string, string>>): void {
  replyText(response, status, `${JSON.stringify(body)}\n`, headers);
}

/** An answer already written as JSON text. */
export function replyText(response: http.ServerResponse, status: number, text: string, headers?: Readonly<Record<string, string>>): void {
  const head = { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(text)) };
  response.writeHead(status, headers === undefined ? head : { ...head, ...headers });
  response.end(text);
}

/** Whether `work` ended within `ms`. */
export function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([work.then(() => true as const), late]).finally(() => clearTimeout(timer));
}

/**
 * Stops a server gracefully within `ms`: no new connections, and `work` (the requests in flight)
 * may finish; what is still running then is cut short by `cutShort` and gets half a second to
 * answer. Resolves with the last step: close the remaining connections and wait for the close.
 */
export async function drain(server: http.Server, work: Promise<unknown>, idle: () => Promise<void>, ms: number, cutShort: () => void): Promise<() => Promise<void>> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  if (!(await within(work, Math.max(0, ms)))) {
    cutShort();
    await within(idle(), 500);
  }
  return async () => {
    server.closeAllConnections();
    await closed;
  };
}

/**
 * Runs `work` once: when the server has answered its first request, or after `ms`, whichever comes
 * first (a cold start answers its first event before anything else). The function returned runs it
 * now if it has not run yet (at shutdown).
 */
export function afterFirstRequest(server: http.Server, work: () => void, ms = 1000): () => void {
  let done = false;
  const now = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    work();
  };
  const timer = setTimeout(now, ms).unref();
  server.once("request", (_request: http.IncomingMessage, response: http.ServerResponse) => response.once("finish", () => setImmediate(now)));
  return now;
}
