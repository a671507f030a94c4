// HTTP-level behaviour of the real server, on a free port, against a local Optune receiver.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { answerStatus } from "../handler/measure/server.js";
import { jobPod } from "./support/pods.js";
import { podEvent, startStack, type Stack } from "./support/stack.js";

const JOB_ENV = { POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme.example.com", OPTUNE_AUTH_TOKEN: "s3cret-token-value" };

describe("probes and routing", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack(JOB_ENV);
  });
  after(() => stack.close());

  for (const path of ["/healthz", "/readyz", "/_/health"]) {
    test(`GET ${path} answers 200`, async () => {
      const response = await fetch(new URL(path, stack.fn.url));
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { status: "ok" });
    });
  }

  test("GET / is not how events arrive: 405 with Allow: POST", async () => {
    const response = await fetch(stack.fn.url);
    assert.equal(response.status, 405);
    assert.equal(response.headers.get("allow"), "POST");
  });

  test("POST to another path: 404 that says where to post", async () => {
    const response = await stack.post("{}", { "content-type": "application/json" }, "/events");
    assert.equal(response.status, 404);
    assert.match(((await response.json()) as { error: string }).error, /POST CloudEvents to \//);
  });
});

describe("503 only when the source's retries can help", () => {
  const failed = (retryAfterSeconds: number) => ({ kind: "failed" as const, pod: "batch/p", error: "Optune answered 503", retryAfterSeconds });
  test("a retry due within the source's window: 503 with Retry-After", () => {
    assert.deepEqual(answerStatus([failed(1)], 3), { status: 503, retryAfter: 1 });
    assert.deepEqual(answerStatus([failed(3)], 3), { status: 503, retryAfter: 3 });
  });
  test("a retry due later than a direct sink retries (~3 s, Retry-After ignored): 202, the sweep sends it", () => {
    assert.deepEqual(answerStatus([failed(5)], 3), { status: 202, retryAfter: 5 });
  });
  test("behind a Broker (window 1023 s) and without a sweep (no window): 503", () => {
    assert.deepEqual(answerStatus([failed(300)], 1023), { status: 503, retryAfter: 300 });
    assert.deepEqual(answerStatus([failed(300)]), { status: 503, retryAfter: 300 });
  });
});

describe("answers to the event source", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ ...JOB_ENV, OPTUNE_SEND_DEADLINE: "0.3" });
  });
  after(() => stack.close());

  test("a finished job: 200 after Optune accepted the MEASUREMENT", async () => {
    const response = await stack.send(podEvent(jobPod({ uid: "uid-200" })));
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { outcome: "sent", pod: "batch/resize-images-8kq2x", appId: "resize-images", runSeconds: 42, exitCode: 0 });
    const [post] = stack.measurements().filter((request) => request.headers["idempotency-key"] === "uid-200");
    assert.equal(post?.path, "/metrics/acme.example.com/resize-images/servo");
    assert.equal(post?.headers.authorization, "Bearer s3cret-token-value");
  });

  test("the same pod again: 200, already reported, nothing sent", async () => {
    const before = stack.measurements().length;
    await stack.send(podEvent(jobPod({ uid: "uid-again" })));
    const response = await stack.send(podEvent(jobPod({ uid: "uid-again" }), "delete"), "structured");
    assert.equal(response.status, 200);
    // The same bytes for every such event: why, and the pod, are in the debug log.
    assert.equal(await response.text(), '{"outcome":"already-reported"}\n');
    assert.equal(stack.measurements().length, before + 1);
  });

  test("the same pod in ten concurrent requests: one MEASUREMENT", async () => {
    const before = stack.measurements().length;
    const responses = await Promise.all(Array.from({ length: 10 }, () => stack.send(podEvent(jobPod({ uid: "uid-concurrent" })))));
    assert.deepEqual(new Set(responses.map((response) => response.status)), new Set([200]));
    assert.equal(stack.measurements().length, before + 1);
  });

  test("a pod that is not a job: 200, ignored, nothing sent", async () => {
    const before = stack.measurements().length;
    const response = await stack.send(podEvent(jobPod({ namespace: "kube-system" })));
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { outcome: "ignored", code: "not-watched" });
    assert.equal(stack.measurements().length, before);
  });

  test("an ignored event's reason and pod are in the debug log, not the answer", async () => {
    const response = await stack.send({ ...podEvent(jobPod({ namespace: "kube-system" })), id: "ignored-reason" });
    assert.equal(await response.text(), '{"outcome":"ignored","code":"not-watched"}\n');
    const line = stack.logs.find((entry) => entry.ceId === "ignored-reason");
    assert.deepEqual([line?.level, line?.code, line?.reason, line?.pod], ["debug", "not-watched", "namespace kube-system is not watched", "kube-system/resize-images-8kq2x"]);
  });

  test("Optune down: 503 with Retry-After, and the redelivered event is sent", async () => {
    stack.receiver.respond = () => ({ status: 503, body: "{}" });
    const event = podEvent(jobPod({ uid: "uid-down" }));
    const refused = await stack.send(event);
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    const body = (await refused.json()) as { outcome: string; error: string };
    assert.equal(body.outcome, "failed");
    assert.match(body.error, /^Optune answered 503/);

    stack.receiver.respond = () => ({ status: 200, body: "{}" });
    const redelivered = await stack.send({ ...event, id: "a-new-id" });
    assert.equal(redelivered.status, 200);
    const accepted = stack.measurements().filter((request) => request.headers["idempotency-key"] === "uid-down" && request.status === 200);
    assert.equal(accepted.length, 1);
  });

  test("Optune refuses the message (4xx): 503 so the event is kept, and no retry loop", async () => {
    stack.receiver.respond = () => ({ status: 401, body: '{"error":"bad token"}' });
    const response = await stack.send(podEvent(jobPod({ uid: "uid-401" })));
    stack.receiver.respond = () => ({ status: 200, body: "{}" });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "5");
    assert.equal(stack.measurements().filter((request) => request.headers["idempotency-key"] === "uid-401").length, 1);
  });

  test("a body that is not JSON: 400 naming the problem", async () => {
    const response = await stack.post('{"specversion":"1.0",', { "content-type": "application/cloudevents+json" });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { error: string }).error, /^body is not valid JSON/);
  });

  test("a resource event whose data is not an object: 400", async () => {
    const response = await stack.send({ ...podEvent(jobPod()), data: ["not", "a", "pod"] }, "structured");
    assert.equal(response.status, 400);
  });

  test("a plain JSON POST that is not a CloudEvent: 400", async () => {
    const response = await stack.post(JSON.stringify(jobPod()), { "content-type": "application/json" });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { error: string }).error, /^not a CloudEvent/);
  });

  test("a body over 4 MiB: 413", async () => {
    const response = await stack.post(Buffer.alloc(5 * 1024 * 1024, 0x20), { "content-type": "application/cloudevents+json" });
    assert.equal(response.status, 413);
  });

  test("a body over 4 MiB without Content-Length (chunked): 413", async () => {
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(new Uint8Array(1024 * 1024).fill(0x20));
        controller.close();
      },
    });
    const response = await fetch(stack.fn.url, { method: "POST", headers: { "content-type": "application/cloudevents+json" }, body: chunks, duplex: "half" } as RequestInit);
    assert.equal(response.status, 413);
  });

  test("a pod of 1 MiB (many env vars) is accepted", async () => {
    const pod = jobPod({ uid: "uid-big" }) as { spec: { containers: Array<{ env: unknown[] }> } };
    const big = structuredClone(pod);
    for (let i = 0; i < 12_000; i++) big.spec.containers[0]!.env.push({ name: `VAR_${i}`, value: "x".repeat(64) });
    const response = await stack.send(podEvent(big), "binary");
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { outcome: string }).outcome, "sent");
  });

  test("a compressed body: 415", async () => {
    const response = await stack.post("x", { "content-type": "application/cloudevents+json", "content-encoding": "gzip" });
    assert.equal(response.status, 415);
  });

  test("a batch: one outcome per event, 200", async () => {
    const events = [podEvent(jobPod({ uid: "uid-b1" })), podEvent(jobPod({ uid: "uid-b2", running: true })), podEvent(jobPod({ uid: "uid-b1" }))];
    const response = await stack.post(JSON.stringify(events), { "content-type": "application/cloudevents-batch+json" });
    assert.equal(response.status, 200);
    const { outcomes } = (await response.json()) as { outcomes: Array<{ outcome: string }> };
    assert.deepEqual(outcomes.map((outcome) => outcome.outcome), ["sent", "ignored", "already-reported"]);
  });

  test("in a batch, an ignored event's answer is its code alone, as on its own", async () => {
    const events = [podEvent(jobPod({ uid: "uid-b3", running: true })), podEvent(jobPod({ uid: "uid-b4", namespace: "kube-system" }))];
    const response = await stack.post(JSON.stringify(events), { "content-type": "application/cloudevents-batch+json" });
    assert.deepEqual(await response.json(), { outcomes: [{ outcome: "ignored", code: "not-finished" }, { outcome: "ignored", code: "not-watched" }] });
  });

  test("a Reference-mode event: 200, ignored, with a warning to switch the source to Resource mode", async () => {
    const response = await stack.send({
      ...podEvent(jobPod()),
      type: "dev.knative.apiserver.ref.update",
      data: { apiVersion: "v1", kind: "Pod", name: "resize-images-8kq2x", namespace: "batch" },
    });
    assert.equal(response.status, 200);
    const warning = stack.logs.find((line) => line.level === "warn" && line.ceType === "dev.knative.apiserver.ref.update");
    assert.match(String(warning?.reason), /^reference mode needs the Kubernetes API/);
  });

  test("another event type: 200, ignored, logged at debug", async () => {
    const response = await stack.send({ ...podEvent(jobPod()), type: "com.example.build.finished", id: "other-1", data: {} });
    assert.equal(response.status, 200);
    const line = stack.logs.find((record) => record.ceId === "other-1");
    assert.equal(line?.level, "debug");
  });

  test("one info line per handled event: pod, app id, outcome, run time, elapsed", async () => {
    await stack.send(podEvent(jobPod({ uid: "uid-log" }), "update", "event-log-1"));
    const line = stack.logs.find((record) => record.ceId === "event-log-1");
    assert.equal(line?.level, "info");
    assert.equal(line?.msg, "event handled");
    assert.equal(line?.pod, "batch/resize-images-8kq2x");
    assert.equal(line?.appId, "resize-images");
    assert.equal(line?.outcome, "sent");
    assert.equal(line?.runSeconds, 42);
    assert.equal(typeof line?.elapsedMs, "number");
  });

  test("the token never appears in the logs, whatever happened", () => {
    assert.ok(stack.logs.length > 10);
    assert.ok(!stack.logText().includes("s3cret-token-value"));
  });
});

describe("lifecycle", () => {
  test("HELLO to app _global_ when serving starts; GOODBYE with the reason when stopped", async () => {
    const stack = await startStack(JOB_ENV);
    await stack.close();
    const lifecycle = stack.receiver.requests.filter((request) => request.path === "/metrics/acme.example.com/_global_/servo");
    assert.deepEqual(
      lifecycle.map((request) => request.body),
      [
        { event: "HELLO", param: { account: "acme.example.com" } },
        { event: "GOODBYE", param: { account: "acme.example.com", reason: "test over" } },
      ],
    );
  });

  test("HELLO waits for the first event's answer, or a second when none comes", async () => {
    const quiet = await startStack(JOB_ENV);
    try {
      assert.equal(quiet.receiver.requests.length, 0, "nothing sent before the first request or the second is up");
      await new Promise((resolve) => setTimeout(resolve, 1300));
      assert.deepEqual(quiet.receiver.requests.map((request) => (request.body as { event: string }).event), ["HELLO"]);
    } finally {
      await quiet.close();
    }
    const woken = await startStack(JOB_ENV);
    try {
      await woken.send(podEvent(jobPod()));
      while (woken.receiver.requests.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(woken.receiver.requests.map((request) => (request.body as { event: string }).event), ["MEASUREMENT", "HELLO"]);
    } finally {
      await woken.close();
    }
  });

  test("stopping waits for the delivery in flight before GOODBYE", async () => {
    const stack = await startStack(JOB_ENV);
    const seen: Record<string, () => void> = {};
    const arrived = (event: string) => new Promise<void>((resolve) => (seen[event] = resolve));
    const hello = arrived("HELLO");
    const measurement = arrived("MEASUREMENT");
    stack.receiver.respond = (request) => {
      const event = (request.body as { event: string }).event;
      seen[event]?.();
      return { status: 200, body: "{}", ...(event === "MEASUREMENT" ? { delayMs: 300 } : {}) };
    };
    await hello;
    const inFlight = stack.send(podEvent(jobPod()));
    await measurement; // Optune has the request and holds its answer
    const stopped = stack.close();
    assert.equal((await inFlight).status, 200);
    await stopped;
    assert.deepEqual(
      stack.receiver.requests.map((request) => (request.body as { event: string }).event),
      ["HELLO", "MEASUREMENT", "GOODBYE"],
    );
  });

  test("dry run: without account and URL, each message is printed as one {url, message} line, nothing is sent", async () => {
    const stack = await startStack({ OPTUNE_URL: undefined, POD_NAMESPACES: "batch" });
    const response = await stack.send(podEvent(jobPod()));
    await stack.close();
    assert.equal(response.status, 200);
    assert.equal(stack.receiver.requests.length, 0);
    const lines = stack.stdout.map((line) => JSON.parse(line) as { url: string; message: { event: string } });
    // HELLO waits until the first event is answered: a cold start answers the event that woke it first.
    assert.deepEqual(lines.map((line) => [line.url, line.message.event]), [
      ["https://us-central1-optune-saas-collect.cloudfunctions.net/metrics/{acct}/resize-images/servo", "MEASUREMENT"],
      ["https://us-central1-optune-saas-collect.cloudfunctions.net/metrics/{acct}/_global_/servo", "HELLO"],
      ["https://us-central1-optune-saas-collect.cloudfunctions.net/metrics/{acct}/_global_/servo", "GOODBYE"],
    ]);
  });
});
