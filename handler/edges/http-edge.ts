// What both servers (the CloudEvents function on HTTP, the admission webhook on HTTPS) do the same
// way at the edge: probes, one POST path, a bounded body, answers as JSON, timeouts against slow
// clients, a count of requests in flight for draining. The halves bring only what a POST means.
// Everything that can be decided from the headers (path, size, the sender's token, room in the
// budget of body bytes) is decided before the first byte of a body is read.
import type http from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "./log.js";
import { clip } from "../jobs/pod.js";

/** Generous for Pods: the API server stores objects up to ~1.5 MiB. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * The bytes of request bodies one server holds at once (reserved by Content-Length when a body is
 * about to be read, freed when its request is answered): 4 bodies of the largest size. Beyond it a
 * request is answered 503 with Retry-After before its body is read, so memory stays under the
 * pod's limit however many senders post at once (64 bodies of 4 MiB took 362 MiB without it).
 */
export const MAX_BODY_BYTES_IN_FLIGHT = 4 * MAX_BODY_BYTES;

/**
 * Slow clients cannot hold a server: the headers must arrive within 10 s, the body within 10 s
 * after them (in total, however steadily it drips; the time to handle it is not counted), and the
 * whole request within 20 s (slowloris, bodies that never end), checked every second.
 */
export const SERVER_TIMEOUTS = { headersTimeout: 10_000, bodyTimeout: 10_000, requestTimeout: 20_000, connectionsCheckingInterval: 1_000 } as const;
export type ServerTimeouts = { readonly [K in keyof typeof SERVER_TIMEOUTS]: number };

/** What Node's servers are given of the timeouts (the body's deadline is the edge's own). */
export function nodeTimeouts({ bodyTimeout: _, ...node }: ServerTimeouts): Omit<ServerTimeouts, "bodyTimeout"> {
  return node;
}

/**
 * Connections that never send a request: closed `silentMs` after they were accepted (on Node 20,
 * headersTimeout starts only at a request's first byte, so a silent socket was held for ever);
 * a TLS handshake must end within `handshakeMs`; above `max` connections, the oldest one that is
 * not being answered (silent, still sending its request, or idle between requests) is closed to
 * make room, so a probe and the API server's admission still get in while a flood holds the slots.
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
  /** MAX_BODY_BYTES_IN_FLIGHT unless a test needs it smaller. */
  readonly maxBodyBytesInFlight?: number;
  /** How long a body may take to arrive once its headers have (SERVER_TIMEOUTS.bodyTimeout). */
  readonly bodyTimeoutMs?: number;
  /**
   * Decides from the headers alone, before any byte of the body is read (e.g. the sender's token):
   * a refusal is answered as it is, and the connection closed rather than the body read.
   */
  readonly screen?: (request: http.IncomingMessage) => Promise<Refusal | undefined>;
  /** Whether /readyz says ready (false while stopping: the endpoint is taken out before the server goes). */
  readonly ready?: () => boolean;
}

/** An answer given instead of reading a request's body. */
export interface Refusal {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface Edge {
  readonly listener: http.RequestListener;
  /** Resolves when no request is in flight. */
  readonly idle: () => Promise<void>;
  /** The body bytes reserved now against maxBodyBytesInFlight. */
  readonly bodyBytesInFlight: () => number;
}

class BodyTooLarge extends Error {}
/** The body did not arrive within its deadline. */
class BodyTooSlow extends Error {}
/** A body without Content-Length grew beyond the room left in the budget. */
class OverBudget extends Error {}
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
  // The last request of each connection that sent one, oldest connection first.
  const serving = new Map<Socket, { readonly request: http.IncomingMessage; readonly response: http.ServerResponse }>();
  let open = 0;
  server.on("connection", (socket: Socket) => {
    open++;
    socket.once("close", () => open--);
    if (!tls) watch(socket);
    if (open > limits.max) (evictable() ?? socket).destroy();
  });
  if (tls) server.on("secureConnection", watch);
  server.on("request", (request: http.IncomingMessage, response: http.ServerResponse) => {
    silent.delete(request.socket);
    serving.set(request.socket, { request, response });
  });
  function watch(socket: Socket): void {
    silent.set(socket, Date.now());
    socket.once("close", () => {
      silent.delete(socket);
      serving.delete(socket);
    });
  }
  /** The oldest connection nobody waits on: silent, else one still sending its request or idle after its answer. */
  function evictable(): Socket | undefined {
    const oldest = silent.keys().next();
    if (oldest.done !== true) return oldest.value;
    for (const [socket, { request, response }] of serving) if (!request.complete || response.writableFinished) return socket;
    return undefined;
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
  const budget = options.maxBodyBytesInFlight ?? MAX_BODY_BYTES_IN_FLIGHT;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? SERVER_TIMEOUTS.bodyTimeout;
  const { log } = options;
  let active = 0;
  let reserved = 0;
  /** Reserves `bytes` of the budget; false when they do not fit. */
  const reserve = (bytes: number): boolean => {
    if (reserved + bytes > budget) return false;
    reserved += bytes;
    return true;
  };
  const overBudget = (): Refusal => ({ status: 503, body: { error: `${budget} bytes of request bodies are being read: send it again` }, headers: { "Retry-After": "1" } });
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
    if (encoding !== undefined && encoding !== "identity") return refuse(response, { status: 415, body: { error: `content-encoding ${clip(encoding, 32)} is not supported` } });
    const declared = Number(request.headers["content-length"] ?? NaN); // Node refuses a malformed one itself
    if (declared > maxBodyBytes) return refuse(response, tooLarge());
    const refusal = await options.screen?.(request);
    if (refusal !== undefined) return refuse(response, refusal);
    // A declared body is reserved whole before it is read; one without Content-Length as it arrives.
    const known = Number.isFinite(declared);
    let held = known ? declared : 0;
    if (!reserve(held)) return refuse(response, overBudget());
    const room = (bytes: number): boolean => {
      if (known) return true;
      if (!reserve(bytes)) return false;
      held += bytes;
      return true;
    };
    try {
      let body: Buffer;
      try {
        body = await readBody(request, maxBodyBytes, slowBodies, room);
      } catch (error) {
        const late =
          error instanceof BodyTooLarge ? tooLarge()
          : error instanceof BodyTooSlow ? { status: 408, body: { error: `the body did not arrive within ${bodyTimeoutMs} ms` } }
          : error instanceof OverBudget ? overBudget()
          : undefined;
        if (late === undefined) throw error;
        request.resume(); // drain and discard the rest so the client reads our answer
        return refuse(response, late);
      }
      return await options.post(request, response, body);
    } finally {
      reserved -= held;
    }
  }

  const tooLarge = (): Refusal => ({ status: 413, body: { error: `body is larger than ${maxBodyBytes} bytes` } });
  const slowBodies = deadlines(bodyTimeoutMs);

  const idle = () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)));
  return { listener, idle, bodyBytesInFlight: () => reserved };
}

/** An answer instead of the body (or the rest of it): the connection is closed after it. */
function refuse(response: http.ServerResponse, refusal: Refusal): void {
  reply(response, refusal.status, refusal.body, { ...refusal.headers, Connection: "close" });
}

/**
 * The bodies being read and when each must have arrived. One timer checks them all (a quarter of
 * the timeout apart, at most a second), running only while a body is being read: a timer set and
 * cleared per request cost ~2 % of an event's CPU. A body may take up to a quarter longer.
 */
interface Deadlines {
  /** Calls `late` if it is not removed within the timeout; returns the removal. */
  add(late: () => void): () => void;
}

function deadlines(timeoutMs: number): Deadlines {
  const watched = new Map<() => void, number>(); // insertion-ordered: the earliest deadline first
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    const now = Date.now();
    for (const [late, deadline] of watched) {
      if (deadline > now) break;
      watched.delete(late);
      late();
    }
    if (watched.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  return {
    add(late) {
      watched.set(late, Date.now() + timeoutMs);
      timer ??= setInterval(check, Math.max(1, Math.min(1000, timeoutMs / 4))).unref();
      return () => watched.delete(late);
    },
  };
}

/**
 * Reads a body of at most `limit` bytes within the deadline of `slow`; `room(bytes)` says whether
 * `bytes` more may be held (the budget of bodies in flight).
 */
function readBody(request: http.IncomingMessage, limit: number, slow: Deadlines, room: (bytes: number) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      unwatch();
      request.off("data", onData);
      if (error !== undefined) reject(error);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const unwatch = slow.add(() => settle(new BodyTooSlow()));
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) settle(new BodyTooLarge());
      else if (!room(chunk.length)) settle(new OverBudget());
      else chunks.push(chunk);
    };
    // An Error only when the body had not ended: every request closes (made only then: an Error
    // captures a stack, ~7 % of an event's CPU when it was made for every request).
    const gone = () => {
      if (!settled) settle(new ClientGone());
    };
    request.on("data", onData);
    request.once("end", () => settle());
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
