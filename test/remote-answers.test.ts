// Every way a remote can answer, as tables: for each, how many requests the remote saw, how long
// the delivery took and what it ended as. Time is a fake clock wherever the code waits, so the
// tables assert the waits exactly and take no time; hangs and resets use real sockets.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { silentLogger } from "../handler/edges/log.js";
import { backoffMs, createPost, MAX_ANSWER_BYTES, type DeliveryResult } from "../handler/edges/optune.js";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.js";
import { FAKE_START, fakeTime } from "./support/fake-time.js";
import { jobPod } from "./support/pods.js";
import { startRemote, type Behaviour, type Remote } from "./support/remote.js";
import { podEvent, startStack, type Stack } from "./support/stack.js";

/** The waits of retries 1..n with the fixed random 0.5, and nothing else. */
const backoffs = (n: number) => Array.from({ length: n }, (_, index) => backoffMs(index + 1, 0.5));

describe("Optune's answers, as a table", () => {
  let remote: Remote;
  before(async () => {
    remote = await startRemote(() => ({ status: 200 }));
  });
  after(() => remote.close());
  const script = (...answers: Behaviour[]) => {
    remote.seen.length = 0;
    remote.behave = (attempt) => answers[Math.min(attempt, answers.length) - 1]!;
  };

  // Retried statuses until the 2 s deadline: waits 187.5, 375, 750 ms; the next (1500) would pass it.
  const RETRIED = { requests: 4, waits: backoffs(3) };
  for (const [status, expected] of [
    [400, { requests: 1, waits: [] }],
    [401, { requests: 1, waits: [] }],
    [403, { requests: 1, waits: [] }],
    [404, { requests: 1, waits: [] }],
    [301, { requests: 1, waits: [] }],
    [307, { requests: 1, waits: [] }],
    [408, RETRIED],
    [429, RETRIED],
    [500, RETRIED],
    [502, RETRIED],
    [503, RETRIED],
    [504, RETRIED],
  ] as const) {
    test(`${status}: ${expected.requests} request(s), waits ${JSON.stringify(expected.waits)}`, async () => {
      script({ status, headers: status >= 300 && status < 400 ? { Location: `${remote.url}/elsewhere` } : {} });
      const { post, waits, elapsed } = fakeTime({ deadlineMs: 2000 });
      const result = await post(`${remote.url}/m/a`, "{}", {});
      assert.equal(remote.seen.length, expected.requests);
      assert.deepEqual(waits, expected.waits);
      assert.equal(elapsed(), expected.waits.reduce((a, b) => a + b, 0));
      assert.ok(!result.ok);
      assert.equal(result.status, status);
      assert.match(result.error, new RegExp(`^Optune answered ${status} `));
      // Retryable ones say when to try again; others leave that to the caller's default.
      assert.equal(result.retryAfterSeconds === undefined, expected.requests === 1);
    });
  }

  const future = (seconds: number) => new Date(FAKE_START + seconds * 1000).toUTCString();
  for (const [form, header, firstWait] of [
    ["missing", undefined, backoffMs(1, 0.5)],
    ["0", "0", backoffMs(1, 0.5)],
    ["negative", "-5", backoffMs(1, 0.5)],
    ["fractional", "1.5", backoffMs(1, 0.5)],
    ["garbage", "soon", backoffMs(1, 0.5)],
    ["1e30", "1e30", backoffMs(1, 0.5)],
    ["an HTTP date in the past", "Tue, 24 Nov 2026 08:00:00 GMT", backoffMs(1, 0.5)],
    ["7 seconds", "7", 7000],
    ["an HTTP date 9 s ahead", future(9), 9000],
  ] as const) {
    test(`Retry-After ${form}: the retry waits ${firstWait} ms, never less than the backoff`, async () => {
      script({ status: 503, headers: header === undefined ? {} : { "Retry-After": header } }, { status: 200 });
      const { post, waits, elapsed } = fakeTime();
      assert.deepEqual(await post(`${remote.url}/m/a`, "{}", {}), { ok: true, attempts: 2 });
      assert.equal(remote.seen.length, 2);
      assert.deepEqual(waits, [firstWait]);
      assert.equal(elapsed(), firstWait);
    });
  }

  for (const [form, header] of [
    ["999999", "999999"],
    ["a 400-digit number", "9".repeat(400)],
    ["an HTTP date a day ahead", future(86_400)],
  ] as const) {
    test(`Retry-After ${form}: no wait beyond the deadline, and at most 300 s passed on`, async () => {
      script({ status: 503, headers: { "Retry-After": header } });
      const { post, waits } = fakeTime();
      const result = await post(`${remote.url}/m/a`, "{}", {});
      assert.equal(remote.seen.length, 1);
      assert.deepEqual(waits, []);
      assert.ok(!result.ok);
      assert.equal(result.retryAfterSeconds, 300);
    });
  }

  test("no attempt is made that could only time out: the last real answer is reported", async () => {
    script({ status: 503 });
    const { post, waits } = fakeTime({ deadlineMs: 200 });
    const result = await post(`${remote.url}/m/a`, "{}", {});
    assert.equal(remote.seen.length, 1, "the retry would have had 12 ms left");
    assert.deepEqual(waits, []);
    assert.ok(!result.ok && result.error === "Optune answered 503 Service Unavailable", JSON.stringify(result));
  });

  test("a storm is impossible: Retry-After 0 on every answer makes ~5 requests in 4 s, not thousands", async () => {
    script({ status: 503, headers: { "Retry-After": "0" } });
    const started = Date.now();
    const post = createPost({ token: () => undefined, timeoutMs: 1000, deadlineMs: 4000, log: silentLogger });
    const result = await post(`${remote.url}/m/a`, "{}", {});
    assert.ok(!result.ok);
    assert.ok(remote.seen.length <= 8, `${remote.seen.length} requests`);
    assert.ok(Date.now() - started < 5000);
  });

  test("a hang: each attempt ends at the timeout, the whole delivery at the deadline", async () => {
    script({ hang: true });
    const started = Date.now();
    const post = createPost({ token: () => undefined, timeoutMs: 100, deadlineMs: 400, log: silentLogger, random: () => 0.5 });
    const result = await post(`${remote.url}/m/a`, "{}", {});
    const took = Date.now() - started;
    assert.ok(!result.ok && result.error === "no answer from Optune within 100 ms", JSON.stringify(result));
    assert.ok(remote.seen.length >= 2 && remote.seen.length <= 4, `${remote.seen.length} requests`);
    assert.ok(took < 400 + 500, `took ${took} ms`);
  });

  test("a reset connection is retried, then reported as unreachable", async () => {
    script({ reset: true }, { reset: true }, { status: 200 });
    const { post, waits } = fakeTime();
    assert.deepEqual(await post(`${remote.url}/m/a`, "{}", {}), { ok: true, attempts: 3 });
    assert.equal(remote.seen.length, 3);
    assert.deepEqual(waits, backoffs(2));
  });

  test("a 200 whose body trickles in is delivered at the status line: one request, no duplicate", async () => {
    script({ status: 200, trickle: '{"ok":true,"padding":"....."}', everyMs: 100 });
    const post = createPost({ token: () => undefined, timeoutMs: 300, deadlineMs: 5000, log: silentLogger });
    assert.deepEqual(await post(`${remote.url}/m/a`, "{}", {}), { ok: true, attempts: 1 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(remote.seen.length, 1);
  });

  test("an endless 200 body is read no further than a bound, and the connection is dropped", async () => {
    script({ status: 200, endless: true });
    const post = createPost({ token: () => undefined, timeoutMs: 2000, deadlineMs: 5000, log: silentLogger });
    const result = await post(`${remote.url}/m/a`, "{}", {}, { wantAnswer: true });
    assert.deepEqual(result, { ok: true, attempts: 1 }, "an answer too long to be a command counts as no answer");
    await new Promise((resolve) => setTimeout(resolve, 200));
    const written = remote.written();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(remote.written(), written, "the remote can no longer write: the connection is gone");
    assert.ok(written < 64 * MAX_ANSWER_BYTES, `${written} bytes written`);
  });

  test("an endless error body is cut to an excerpt, then retried", async () => {
    script({ status: 500, endless: true }, { status: 200 });
    const { post } = fakeTime();
    const before = process.memoryUsage().rss;
    assert.deepEqual(await post(`${remote.url}/m/a`, "{}", {}), { ok: true, attempts: 2 });
    assert.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024);
  });

  test("a 2xx answer is read when asked for (a command), within its bound", async () => {
    script({ status: 200, body: '{"cmd":"MEASURE"}' });
    const { post } = fakeTime();
    assert.deepEqual(await post(`${remote.url}/m/a`, "{}", {}, { wantAnswer: true }), { ok: true, attempts: 1, answer: '{"cmd":"MEASURE"}' });
  });

  test("a header value Node refuses is a permanent failure: not sent, not retried", async () => {
    script({ status: 200 });
    const { post, waits } = fakeTime();
    const result: DeliveryResult = await post(`${remote.url}/m/a`, "{}", { "Idempotency-Key": "bad\nvalue" });
    assert.ok(!result.ok && result.permanent === true && result.retryAfterSeconds === undefined, JSON.stringify(result));
    assert.equal(remote.seen.length, 0);
    assert.deepEqual(waits, []);
  });

  test("shutting down ends a delivery that is waiting to retry, at once", async () => {
    script({ status: 503, headers: { "Retry-After": "20" } });
    const stopping = new AbortController();
    const post = createPost({ token: () => undefined, timeoutMs: 1000, deadlineMs: 60_000, log: silentLogger, signal: stopping.signal });
    const started = Date.now();
    const delivery = post(`${remote.url}/m/a`, "{}", {});
    setTimeout(() => stopping.abort(), 100);
    const result = await delivery;
    assert.ok(!result.ok && result.error === "the function is shutting down" && result.retryAfterSeconds === 1, JSON.stringify(result));
    assert.ok(Date.now() - started < 1000);
  });
});

describe("the Kubernetes API's answers, as a table (claims on)", () => {
  let api: FakeApiServer;
  let stack: Stack;
  before(async () => {
    api = await startFakeApiServer();
    stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", KUBECONFIG: api.kubeconfig, OPTUNE_DEDUPE: "annotation", KUBE_API_TIMEOUT: "0.5", LOG_LEVEL: "warn" });
  });
  afterEach(() => {
    api.fault = undefined;
  });
  after(async () => {
    await stack.close();
    await api.close();
  });

  let sequence = 0;
  // Finished a minute ago: the sweep only looks at jobs that finished within OPTUNE_SWEEP_MAX_AGE.
  const recently = (msAgo: number) => new Date(Math.floor((Date.now() - msAgo) / 1000) * 1000).toISOString().replace(".000Z", "Z");
  const finishedPod = () => api.create(jobPod({ name: `job-${++sequence}`, uid: `uid-k8s-${sequence}`, startedAt: recently(102_000), finishedAt: recently(60_000) }));
  const send = async (pod: unknown, action: "update" | "delete" = "update") => {
    const started = Date.now();
    const response = await stack.send(podEvent(pod, action));
    return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as { outcome: string; error?: string; reason?: string }, took: Date.now() - started };
  };
  const sentFor = (uid: string) => stack.measurements().filter((request) => request.headers["idempotency-key"] === uid).length;

  // A retry within the adapter's ~3 s can help a failed claim (nothing was written): 503. The API
  // server's own Retry-After of 7 s is beyond it: 202, the sweep claims it later.
  for (const [status, answered, retryAfter] of [
    [500, 503, "1"],
    [503, 503, "1"],
    [429, 202, "7"],
  ] as const) {
    test(`the claim answered ${status}: ${answered} with Retry-After ${retryAfter}, nothing sent; later events claim it`, async () => {
      const pod = finishedPod();
      api.fault = ({ verb }) => (verb === "patch" ? { status, ...(status === 429 ? { headers: { "Retry-After": "7" } } : {}) } : undefined);
      const first = await send(pod);
      assert.deepEqual([first.status, first.retryAfter, first.body.outcome], [answered, retryAfter, "failed"]);
      assert.equal(sentFor(String(pod.metadata?.uid)), 0);
      api.fault = undefined;
      assert.equal((await send(pod)).body.outcome, "sent");
      assert.equal(sentFor(String(pod.metadata?.uid)), 1);
    });
  }

  test("the claim hangs: 503 within the API timeout (0.5 s); later events for the pod are not queued behind it", async () => {
    const pod = finishedPod();
    api.fault = ({ verb }) => (verb === "patch" ? "hang" : undefined);
    const [first, second] = await Promise.all([send(pod), send({ ...pod, metadata: { ...pod.metadata, resourceVersion: "x" } })]);
    for (const answer of [first, second]) {
      assert.equal(answer.status, 503);
      assert.ok(answer.took < 2000, `took ${answer.took} ms`);
    }
    assert.match(first.body.error ?? "", /no answer within 500 ms/);
  });

  test("only the final 'sent' patch hangs: the MEASUREMENT is delivered once and the event answered", async () => {
    const pod = finishedPod();
    let patches = 0;
    api.fault = ({ verb }) => (verb === "patch" && ++patches === 2 ? "hang" : undefined);
    const answer = await send(pod);
    assert.deepEqual([answer.status, answer.body.outcome], [200, "sent"]);
    assert.ok(answer.took < 2000, `took ${answer.took} ms`);
    assert.equal(sentFor(String(pod.metadata?.uid)), 1);
  });

  test("calls reuse connections (keep-alive)", async () => {
    const before = api.connections();
    for (let i = 0; i < 5; i++) assert.equal((await send(finishedPod())).body.outcome, "sent");
    assert.ok(api.connections() - before <= 1, `${api.connections() - before} new connections for 10 calls`);
  });

  test("a sweep whose continue token expired (410) starts the list over and finds every job", async () => {
    const pods = Array.from({ length: 250 }, () => finishedPod());
    let expired = false;
    api.fault = ({ verb, query }) => {
      if (verb !== "list" || !query.includes("continue=") || expired) return undefined;
      expired = true;
      return { status: 410 };
    };
    const response = await stack.send({ specversion: "1.0", id: "ping-410", source: "ping", type: "dev.knative.sources.ping", data: {} });
    const body = (await response.json()) as { outcome: string; failed: number };
    assert.deepEqual([response.status, body.outcome, body.failed], [200, "swept", 0]);
    assert.ok(expired);
    for (const pod of pods) assert.equal(sentFor(String(pod.metadata?.uid)), 1);
    const lists = api.requests.filter((request) => request.verb === "list");
    assert.ok(lists.some((request) => request.status === 410));
  });

  test("a sweep refused (403) or failing (500): 503, and the refusal is counted", async () => {
    api.fault = ({ verb }) => (verb === "list" ? { status: 500 } : undefined);
    const failing = await stack.send({ specversion: "1.0", id: "ping-500", source: "ping", type: "dev.knative.sources.ping", data: {} });
    assert.equal(failing.status, 503);
    api.fault = ({ verb }) => (verb === "list" ? { status: 403 } : undefined);
    const refusals = stack.fn.refusals();
    const refused = await stack.send({ specversion: "1.0", id: "ping-403", source: "ping", type: "dev.knative.sources.ping", data: {} });
    assert.equal(refused.status, 503);
    assert.equal(stack.fn.refusals(), refusals + 1);
  });
});
