import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { backoffMs, createDeliver, retryAfterMs, targetUrl, type Post } from "../handler/edges/optune.js";
import { startReceiver, type Receiver } from "../handler/demo/optune-stand-in.js";
import { fakeTime } from "./support/fake-time.js";

describe("the Optune URL", () => {
  test("fills {acct} and {app_id} as percent-encoded path segments", () => {
    assert.equal(
      targetUrl("https://o.example/metrics/{acct}/{app_id}/servo", "acme.example.com", "team a/b?x=1#f"),
      "https://o.example/metrics/acme.example.com/team%20a%2Fb%3Fx%3D1%23f/servo",
    );
  });

  test("$ patterns in values are taken literally", () => {
    assert.equal(targetUrl("http://h/{acct}/{app_id}", "$&", "$1"), "http://h/%24%26/%241");
  });

  test("keeps {acct} when no account is known (a dry run)", () => {
    assert.equal(targetUrl("http://h/{acct}/{app_id}", undefined, "app"), "http://h/{acct}/app");
  });
});

describe("retry timing", () => {
  test("backoff doubles from 250 ms up to 8 s, with half of it random", () => {
    assert.deepEqual([1, 2, 3, 6, 7, 20].map((attempt) => backoffMs(attempt, 0)), [125, 250, 500, 4000, 4000, 4000]);
    assert.deepEqual([1, 2, 6, 20].map((attempt) => backoffMs(attempt, 1)), [250, 500, 8000, 8000]);
  });

  test("Retry-After as seconds or as an HTTP date", () => {
    const now = Date.parse("2026-11-24T09:00:00Z");
    assert.equal(retryAfterMs("3", now), 3000);
    assert.equal(retryAfterMs("Tue, 24 Nov 2026 09:00:07 GMT", now), 7000);
    assert.equal(retryAfterMs("Tue, 24 Nov 2026 08:00:00 GMT", now), 0);
    assert.equal(retryAfterMs("soon", now), undefined);
    assert.equal(retryAfterMs(null, now), undefined);
  });
});

describe("POST with retries, against a local receiver", () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
  });
  after(() => receiver.close());

  function answers(...statuses: Array<number | { status: number; headers?: Record<string, string> }>) {
    receiver.requests.length = 0;
    let index = 0;
    receiver.respond = () => {
      const next = statuses[Math.min(index++, statuses.length - 1)]!;
      return typeof next === "number" ? { status: next, body: "{}" } : { ...next, body: "{}" };
    };
  }

  test("sends JSON with a Bearer token and our headers", async () => {
    answers(200);
    const { post } = fakeTime();
    assert.deepEqual(await post(`${receiver.url}/m/a`, '{"event":"HELLO"}', { "Idempotency-Key": "uid-1" }), { ok: true, attempts: 1 });
    const [request] = receiver.requests;
    assert.equal(request?.headers["content-type"], "application/json");
    assert.equal(request?.headers.authorization, "Bearer t0k");
    assert.equal(request?.headers["idempotency-key"], "uid-1");
    assert.deepEqual(request?.body, { event: "HELLO" });
  });

  test("no Authorization header without a token", async () => {
    answers(200);
    const { post } = fakeTime({ token: () => undefined });
    await post(`${receiver.url}/m/a`, "{}", {});
    assert.equal(receiver.requests[0]?.headers.authorization, undefined);
  });

  for (const status of [408, 429, 500, 502, 503, 504]) {
    test(`retries ${status}`, async () => {
      answers(status, status, 200);
      const { post, waits } = fakeTime();
      assert.deepEqual(await post(`${receiver.url}/m/a`, "{}", {}), { ok: true, attempts: 3 });
      assert.deepEqual(waits, [backoffMs(1, 0.5), backoffMs(2, 0.5)]);
    });
  }

  for (const status of [400, 401, 403, 404, 409, 422]) {
    test(`never retries ${status}`, async () => {
      answers(status, 200);
      const { post, waits } = fakeTime();
      const result = await post(`${receiver.url}/m/a`, "{}", {});
      assert.equal(result.ok, false);
      assert.equal(result.attempts, 1);
      assert.match(!result.ok ? result.error : "", new RegExp(`^Optune answered ${status} `));
      assert.deepEqual(waits, []);
    });
  }

  test("honours Retry-After on 429", async () => {
    answers({ status: 429, headers: { "Retry-After": "7" } }, 200);
    const { post, waits } = fakeTime();
    assert.equal((await post(`${receiver.url}/m/a`, "{}", {})).ok, true);
    assert.deepEqual(waits, [7000]);
  });

  test("gives up when the deadline would pass, and says when to try again", async () => {
    answers(503);
    const { post, waits } = fakeTime({ deadlineMs: 2000 });
    const result = await post(`${receiver.url}/m/a`, "{}", {});
    assert.equal(result.ok, false);
    assert.ok(waits.reduce((a, b) => a + b, 0) < 2000);
    assert.equal(result.attempts, waits.length + 1);
    assert.ok(!result.ok && result.retryAfterSeconds !== undefined && result.retryAfterSeconds >= 1);
  });

  test("a Retry-After beyond the deadline ends the delivery at once", async () => {
    answers({ status: 503, headers: { "Retry-After": "120" } });
    const { post, waits } = fakeTime();
    const result = await post(`${receiver.url}/m/a`, "{}", {});
    assert.deepEqual(waits, []);
    assert.ok(!result.ok && result.retryAfterSeconds === 120);
  });

  test("a timeout is retried, then reported", async () => {
    receiver.requests.length = 0;
    receiver.respond = () => ({ status: 200, delayMs: 300 });
    const { post } = fakeTime({ timeoutMs: 50, deadlineMs: 300 });
    const result = await post(`${receiver.url}/m/a`, "{}", {});
    assert.ok(!result.ok && result.error === "no answer from Optune within 50 ms");
    assert.ok(result.attempts >= 2);
  });

  test("reaches an IPv6 host, keeps the query, and sends credentials in the URL as Basic auth when there is no token", async () => {
    const seen: Array<{ url: string | undefined; host: string | undefined; authorization: string | undefined }> = [];
    const server = http.createServer((request, response) => {
      seen.push({ url: request.url, host: request.headers.host, authorization: request.headers.authorization });
      request.resume().on("end", () => response.writeHead(200).end("{}"));
    });
    await new Promise<void>((resolve) => server.listen(0, "::1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const { post } = fakeTime({ token: () => undefined });
      assert.deepEqual(await post(`http://us%40er:p%3Ass@[::1]:${port}/m/a?x=1`, "{}", {}), { ok: true, attempts: 1 });
      const withToken = fakeTime();
      assert.deepEqual(await withToken.post(`http://user:pass@[::1]:${port}/m/b`, "{}", {}), { ok: true, attempts: 1 });
      assert.deepEqual(seen, [
        { url: "/m/a?x=1", host: `[::1]:${port}`, authorization: `Basic ${Buffer.from("us@er:p:ss").toString("base64")}` },
        { url: "/m/b", host: `[::1]:${port}`, authorization: "Bearer t0k" },
      ]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("a refused connection is retried, then reported", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const { post, waits } = fakeTime({ deadlineMs: 1000 });
    const result = await post(`http://127.0.0.1:${port}/m/a`, "{}", {});
    assert.ok(!result.ok && /^cannot reach Optune: .*ECONNREFUSED/.test(result.error), JSON.stringify(result));
    assert.ok(waits.length >= 1);
  });
});

describe("delivery of a message", () => {
  /** A deliver that sends through `post` (or prints, in a dry run), collecting printed lines. */
  function deliverWith(post: Post, dryRun = false) {
    const lines: string[] = [];
    const deliver = createDeliver({ optuneUrl: "http://h/{acct}/{app_id}/servo", account: "acme", dryRun, echo: true, print: (line) => lines.push(line), post });
    return { deliver, lines };
  }

  test("a dry run prints one {url, message} line and sends nothing", async () => {
    const { deliver, lines } = deliverWith(() => assert.fail("nothing may be sent in a dry run"), true);
    assert.deepEqual(await deliver({ appId: "a b", body: { event: "HELLO" } }), { ok: true, attempts: 0, dryRun: true });
    assert.deepEqual(lines, ['{"url":"http://h/acme/a%20b/servo","message":{"event":"HELLO"}}\n']);
  });

  test("sending passes the URL, the compact body and the Idempotency-Key; echo prints sent messages", async () => {
    const calls: unknown[] = [];
    const { deliver, lines } = deliverWith(async (...args) => {
      calls.push(args);
      return { ok: true, attempts: 1 };
    });
    await deliver({ appId: "app", body: { event: "MEASUREMENT", param: {} }, idempotencyKey: "uid-1" });
    assert.deepEqual(calls, [["http://h/acme/app/servo", '{"event":"MEASUREMENT","param":{}}', { "Idempotency-Key": "uid-1" }, { wantAnswer: false }]]);
    assert.deepEqual(lines, ['{"url":"http://h/acme/app/servo","message":{"event":"MEASUREMENT","param":{}}}\n']);
  });

  test("a failed send prints nothing", async () => {
    const { deliver, lines } = deliverWith(async () => ({ ok: false, error: "down", attempts: 3 }));
    assert.equal((await deliver({ appId: "app", body: {} })).ok, false);
    assert.deepEqual(lines, []);
  });
});
