// HTTP abuse against the real server: slow headers, bodies that never end, many connections,
// more events than deliveries allowed in flight. Probes and real events keep being answered.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { writeFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { after, afterEach, before, describe, test } from "node:test";
import { createHandler } from "../handler/measure/handle.js";
import { parseAppIdPath } from "../handler/jobs/app-id.js";
import { memoryLedger } from "../handler/measure/ledger.js";
import { silentLogger } from "../handler/edges/log.js";
import { createOutcomeLog } from "../handler/measure/outcome-log.js";
import { CONNECTION_LIMITS, MAX_BODY_BYTES_IN_FLIGHT, SERVER_TIMEOUTS } from "../handler/edges/http-edge.js";
import { loadConfig } from "../handler/edges/config.js";
import { startWebhook, type RunningWebhook } from "../handler/adjust/webhook.js";
import { startReceiver, type Receiver } from "../handler/demo/optune-stand-in.js";
import { admissionReview, atCreate, makeCertificate } from "./support/admission.js";
import { scratchDir } from "./support/scratch.js";
import { createHttpServer, type ServerDeps } from "../handler/measure/server.js";
import { jobPod } from "./support/pods.js";
import { podEvent, startStack } from "./support/stack.js";

const connect = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
/** The status line and headers of the first answer on `socket`, or undefined if none came within `ms`. */
function answerOn(socket: net.Socket, ms = 5_000): Promise<{ status: number; headers: string } | undefined> {
  return new Promise((resolve) => {
    let text = "";
    const timer = setTimeout(() => resolve(undefined), ms);
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end === -1) return;
      clearTimeout(timer);
      resolve({ status: Number(text.slice(9, 12)), headers: text.slice(0, end).toLowerCase() });
    });
  });
}
const FOUR_MIB = 4 * 1024 * 1024;
const postHead = (length: number, extra = "") => `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\nContent-Length: ${length}\r\n${extra}\r\n`;
/** The real function server on a free port, with a handler that delivers every job at once. */
async function functionServer(deps: Partial<ServerDeps>): Promise<ReturnType<typeof createHttpServer>> {
  const appIdSpec = "spec/containers/0/env/[JOBID]";
  const handle = createHandler({
    criteria: { namespaces: new Set(["batch"]), appIdPath: parseAppIdPath(appIdSpec), appIdSpec },
    ledger: memoryLedger(),
    deliver: async () => ({ ok: true, attempts: 1 }),
    log: silentLogger,
    sweep: { unavailable: "no sweep here" },
  });
  const server = createHttpServer({ handle, log: silentLogger, outcomes: createOutcomeLog(silentLogger, appIdSpec), ...deps });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}
const closed = (socket: net.Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once("close", () => resolve())));

describe("slow and endless clients", () => {
  // The real server with its timeouts shortened, so the test sees them fire.
  const timeouts = { headersTimeout: 400, bodyTimeout: 800, requestTimeout: 800, connectionsCheckingInterval: 50 };
  let server: ReturnType<typeof createHttpServer>;
  let port: number;
  before(async () => {
    server = await functionServer({ timeouts });
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));

  test("the production server sets header, body and request timeouts, checked every second", () => {
    assert.deepEqual(SERVER_TIMEOUTS, { headersTimeout: 10_000, bodyTimeout: 10_000, requestTimeout: 20_000, connectionsCheckingInterval: 1_000 });
  });

  test("200 connections sending their headers a byte at a time are closed at the headers timeout; probes are answered meanwhile", async () => {
    const sockets = await Promise.all(Array.from({ length: 200 }, () => connect(port)));
    const line = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let index = 0;
    const drip = setInterval(() => {
      for (const socket of sockets) if (!socket.destroyed) socket.write(line[index % line.length]!);
      index++;
    }, 50);
    try {
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      await Promise.all(sockets.map(closed));
    } finally {
      clearInterval(drip);
      for (const socket of sockets) socket.destroy();
    }
  });

  test("a body that never ends is cut at the request timeout, and the server is idle again", async () => {
    const socket = await connect(port);
    socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\nContent-Length: 100000\r\n\r\n{");
    const drip = setInterval(() => socket.write(" "), 50);
    try {
      await closed(socket);
    } finally {
      clearInterval(drip);
    }
    await server.idle();
    const response = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers: { "content-type": "application/cloudevents+json" }, body: JSON.stringify(podEvent(jobPod())) });
    assert.equal(response.status, 200);
  });

  test("1,000 open connections: probes and real events are still answered", async () => {
    const sockets = await Promise.all(Array.from({ length: 1000 }, () => connect(port)));
    try {
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      const response = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers: { "content-type": "application/cloudevents+json" }, body: JSON.stringify(podEvent(jobPod({ uid: "uid-crowd" }))) });
      assert.equal(response.status, 200);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
});

describe("bodies are read only after everything else is decided", () => {
  let server: ReturnType<typeof createHttpServer> | undefined;
  const start = async (deps: Partial<ServerDeps> = {}) => {
    server = await functionServer(deps);
    return (server.address() as AddressInfo).port;
  };
  afterEach(() => new Promise<void>((resolve) => (server === undefined ? resolve() : (server.closeAllConnections(), server.close(() => resolve())))));

  test("an event without a valid token is answered 401 before its body is sent, and the connection closed", async () => {
    const port = await start({ authenticate: async () => ({ ok: false, status: 401, reason: "no Authorization header" }) });
    const socket = await connect(port);
    try {
      socket.write(postHead(FOUR_MIB)); // the 4 MiB never follow
      const answer = await answerOn(socket);
      assert.equal(answer?.status, 401);
      assert.match(answer.headers, /\r\nconnection: close/);
      assert.equal(server!.bodyBytesInFlight(), 0);
    } finally {
      socket.destroy();
    }
  });

  test("bodies in flight are bounded by bytes: beyond 16 MiB, 503 with Retry-After before the body is read", async () => {
    assert.equal(MAX_BODY_BYTES_IN_FLIGHT, 16 * 1024 * 1024);
    const port = await start();
    const holding = await Promise.all(Array.from({ length: 4 }, () => connect(port)));
    const late = await connect(port);
    try {
      for (const socket of holding) socket.write(`${postHead(FOUR_MIB)}{`); // 4 × 4 MiB declared, one byte sent
      await until(() => server!.bodyBytesInFlight() === 4 * FOUR_MIB);
      late.write(postHead(FOUR_MIB));
      const answer = await answerOn(late);
      assert.equal(answer?.status, 503);
      assert.match(answer.headers, /\r\nretry-after: 1\r\n/);
      assert.equal(server!.bodyBytesInFlight(), 4 * FOUR_MIB);
    } finally {
      for (const socket of [...holding, late]) socket.destroy();
    }
    // The senders went away: their share of the budget is free again.
    await until(() => server!.bodyBytesInFlight() === 0);
    const response = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers: { "content-type": "application/cloudevents+json" }, body: JSON.stringify(podEvent(jobPod({ uid: "uid-after-budget" }))) });
    assert.equal(response.status, 200);
  });

  test("a body still arriving at the body deadline is answered 408 and its connection closed, long before the request timeout", async () => {
    const port = await start({ timeouts: { ...SERVER_TIMEOUTS, bodyTimeout: 300 } });
    const socket = await connect(port);
    socket.write(`${postHead(100_000)}{`);
    const drip = setInterval(() => socket.write(" "), 50);
    try {
      const answer = await answerOn(socket);
      assert.equal(answer?.status, 408);
      await closed(socket);
      assert.equal(server!.bodyBytesInFlight(), 0);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
  });
});

describe("the webhook while slow senders hold its connections", () => {
  let receiver: Receiver;
  let webhook: RunningWebhook;
  let ca: string;
  before(async () => {
    receiver = await startReceiver();
    const dir = scratchDir("webhook-slow-");
    const pair = await makeCertificate();
    ca = pair.cert;
    writeFileSync(join(dir, "tls.crt"), pair.cert);
    writeFileSync(join(dir, "tls.key"), pair.key);
    const config = loadConfig({ WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"), WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key"), OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme", OPTUNE_AUTH_TOKEN: "t0k", POD_NAMESPACES: "batch", OPTUNE_DEDUPE: "memory", LOG_LEVEL: "error" });
    // 40 connections at most (1,000 in production), so 60 slow senders are more than it has room for.
    webhook = await startWebhook(config, { print: () => {}, logLine: () => {}, connectionLimits: { ...CONNECTION_LIMITS, max: 40 } });
  });
  after(async () => {
    await webhook.stop("test over");
    await receiver.close();
  });

  test("60 senders dripping a body into 40 slots: probes and a real admission are still answered", async () => {
    const { port } = webhook;
    const slow = await Promise.all(
      Array.from({ length: 60 }, () => new Promise<tls.TLSSocket>((resolve) => {
        const socket = tls.connect(port, "127.0.0.1", { rejectUnauthorized: false }, () => {
          socket.write("POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{");
          resolve(socket);
        });
        socket.on("error", () => {}); // the server closes some of them to make room
        socket.once("close", () => resolve(socket));
      })),
    );
    const drip = setInterval(() => {
      for (const socket of slow) if (!socket.destroyed) socket.write(" ");
    }, 100);
    try {
      for (let i = 0; i < 5; i++) assert.equal((await httpsRequest(`https://127.0.0.1:${port}/healthz`, ca)).status, 200);
      const review = admissionReview(atCreate(jobPod({ namespace: "elsewhere" })), { uid: "d7c2b9f4-0d5e-4a8e-9f65-6c1b2a3e4f50" });
      const admitted = await httpsRequest(`https://127.0.0.1:${port}/mutate`, ca, JSON.stringify(review));
      assert.equal(admitted.status, 200);
      assert.deepEqual((JSON.parse(admitted.body) as { response: { uid: string; allowed: boolean } }).response, { uid: "d7c2b9f4-0d5e-4a8e-9f65-6c1b2a3e4f50", allowed: true });
    } finally {
      clearInterval(drip);
      for (const socket of slow) socket.destroy();
    }
  });

  test("bodies in flight are bounded by bytes: beyond 16 MiB, 503 with Retry-After before the body is read", async () => {
    const head = `POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${FOUR_MIB}\r\n\r\n`;
    const sockets = await Promise.all(Array.from({ length: 5 }, () => new Promise<tls.TLSSocket>((resolve) => {
      const socket = tls.connect(webhook.port, "127.0.0.1", { rejectUnauthorized: false }, () => resolve(socket));
    })));
    const [late, ...holding] = sockets as [tls.TLSSocket, ...tls.TLSSocket[]];
    try {
      for (const socket of holding) socket.write(`${head}{`);
      await until(() => webhook.bodyBytesInFlight() === 4 * FOUR_MIB);
      late.write(head);
      const answer = await answerOn(late);
      assert.equal(answer?.status, 503);
      assert.match(answer.headers, /\r\nretry-after: 1\r\n/);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    await until(() => webhook.bodyBytesInFlight() === 0);
  });
});

/** One request on a new connection; fails after 5 s (a generous margin for a busy machine). */
function httpsRequest(url: string, ca: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: body === undefined ? "GET" : "POST", ca, agent: false, timeout: 5_000, headers: { "content-type": "application/json" } }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    request.on("timeout", () => request.destroy(new Error(`no answer from ${url} within 5 s`)));
    request.on("error", reject);
    request.end(body);
  });
}

/** Waits until `condition` holds (checked every 10 ms, for at most 5 s). */
async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 5_000) throw new Error("the condition never held");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("deliveries in flight are bounded (OPTUNE_MAX_INFLIGHT)", () => {
  test("above the bound, events are answered 503 with Retry-After at once, not queued", async () => {
    const stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", OPTUNE_MAX_INFLIGHT: "2", LOG_LEVEL: "error" });
    try {
      // Optune holds each MEASUREMENT's answer for 300 ms, so the first two are still in flight when the others come.
      stack.receiver.respond = (request) => ({ status: 200, body: "{}", ...((request.body as { event?: string }).event === "MEASUREMENT" ? { delayMs: 300 } : {}) });
      const responses = await Promise.all(Array.from({ length: 5 }, (_, index) => stack.send(podEvent(jobPod({ uid: `uid-bound-${index}`, name: `bound-${index}` })))));
      assert.deepEqual(responses.map((response) => response.status).sort(), [200, 200, 503, 503, 503]);
      for (const response of responses.filter((r) => r.status === 503)) {
        assert.equal(response.headers.get("retry-after"), "1");
        assert.equal(((await response.json()) as { reason: string }).reason, "2 deliveries to Optune are in flight (OPTUNE_MAX_INFLIGHT)");
      }
      assert.equal(stack.measurements().length, 2);
    } finally {
      await stack.close();
    }
  });
});
