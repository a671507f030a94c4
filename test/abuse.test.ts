// HTTP abuse against the real server: slow headers, bodies that never end, many connections,
// more events than deliveries allowed in flight. Probes and real events keep being answered.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { createHandler } from "../handler/measure/handle.js";
import { parseAppIdPath } from "../handler/jobs/app-id.js";
import { memoryLedger } from "../handler/measure/ledger.js";
import { silentLogger } from "../handler/edges/log.js";
import { createOutcomeLog } from "../handler/measure/outcome-log.js";
import { SERVER_TIMEOUTS } from "../handler/edges/http-edge.js";
import { createHttpServer } from "../handler/measure/server.js";
import { jobPod } from "./support/pods.js";
import { podEvent, startStack } from "./support/stack.js";

const connect = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
const closed = (socket: net.Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once("close", () => resolve())));

describe("slow and endless clients", () => {
  // The real server with its timeouts shortened, so the test sees them fire.
  const timeouts = { headersTimeout: 400, requestTimeout: 800, connectionsCheckingInterval: 50 };
  let server: ReturnType<typeof createHttpServer>;
  let port: number;
  before(async () => {
    const handle = createHandler({
      criteria: { namespaces: new Set(["batch"]), appIdPath: parseAppIdPath("spec/containers/0/env/[JOBID]"), appIdSpec: "spec/containers/0/env/[JOBID]" },
      ledger: memoryLedger(),
      deliver: async () => ({ ok: true, attempts: 1 }),
      log: silentLogger,
      sweep: { unavailable: "no sweep here" },
    });
    const outcomes = createOutcomeLog(silentLogger, "spec/containers/0/env/[JOBID]");
    server = createHttpServer({ handle, log: silentLogger, outcomes, timeouts });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));

  test("the production server sets header and request timeouts, checked every second", () => {
    assert.deepEqual(SERVER_TIMEOUTS, { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1_000 });
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
