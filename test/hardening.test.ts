// What a hostile or broken sender can send, through the real server: each case has a defined
// answer (200 ignored, 400 malformed, 503 retry) and never a 500, a crash or a wrong message.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../handler/edges/config.js";
import { createFunction } from "../handler/measure/function.js";
import { memoryLedger } from "../handler/measure/ledger.js";
import { jobPod } from "./support/pods.js";
import { podEvent, startStack, type Stack } from "./support/stack.js";

const JOB_ENV = { POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", OPTUNE_AUTH_TOKEN: "SECRET-TOKEN-123", OPTUNE_SEND_DEADLINE: "0.5" };

type Answer = { outcome: string; code?: string; reason?: string; error?: string; outcomes?: Answer[] };

describe("odd pods are ignored or measured, never a 500", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack(JOB_ENV);
  });
  after(() => stack.close());

  const send = async (pod: unknown) => {
    const response = await stack.send(podEvent(pod), "structured");
    return { status: response.status, body: (await response.json()) as Answer };
  };
  const withMetadata = (metadata: Record<string, unknown>) => ({ ...jobPod(), metadata: { ...jobPod().metadata, ...metadata } });

  for (const [field, value] of [
    ["name", { toString: 1 }],
    ["name", [{ toString: 1 }]],
    ["namespace", { toString: 1 }],
    ["namespace", [{ valueOf: 1 }, 2]],
    ["uid", { toString: 1 }],
  ] as const) {
    test(`metadata.${field} = ${JSON.stringify(value)}: 200`, async () => {
      const { status, body } = await send(withMetadata({ [field]: value }));
      assert.equal(status, 200, JSON.stringify(body));
      if (field === "namespace") assert.deepEqual([body.outcome, body.code], ["ignored", "not-watched"]);
    });
  }

  test("kind given as an object: 200, not a Pod", async () => {
    const { status, body } = await send({ ...jobPod(), kind: { toString: 1 } });
    assert.equal(status, 200);
    assert.deepEqual([body.outcome, body.code], ["ignored", "not-a-pod"]);
    assert.ok(stack.logs.some((line) => line.code === "not-a-pod" && line.reason === "not a Pod (kind (an object))"));
  });

  test("a uid that is not a string counts as missing: the pod is reported once, by name", async () => {
    const pod = withMetadata({ name: "uid-object", uid: { a: 1 } });
    assert.equal((await send(pod)).body.outcome, "sent");
    assert.equal((await send(pod)).body.outcome, "already-reported");
    const [post] = stack.measurements().filter((request) => (request.body as { param: { annotations: { pod: string } } }).param.annotations.pod === "batch/uid-object");
    assert.equal(post?.headers["idempotency-key"], undefined);
    assert.equal((post?.body as { param: { annotations: Record<string, unknown> } }).param.annotations.uid, undefined);
  });

  test("resources nested 5,000 levels deep: 200, and only what a resources object can hold is sent", async () => {
    // Built as text: JSON.stringify itself cannot write what the server must be able to read.
    let deep = '{"cpu":"1"}';
    for (let i = 0; i < 5000; i++) deep = i % 2 === 0 ? `{"x":${deep}}` : `[${deep}]`;
    const resources = { limits: { cpu: "500m", odd: "@DEEP@" }, requests: "@DEEP@", claims: ["@DEEP@", { name: "gpu" }], nested: "@DEEP@" };
    const body = JSON.stringify(podEvent(jobPod({ uid: "uid-deep", resources }))).replaceAll('"@DEEP@"', deep);
    const response = await stack.post(body, { "content-type": "application/cloudevents+json" });
    assert.equal(response.status, 200, await response.text());
    const [post] = stack.measurements().filter((request) => request.headers["idempotency-key"] === "uid-deep");
    assert.equal((post?.body as { param: { annotations: { resources: string } } }).param.annotations.resources, '{"limits":{"cpu":"500m"},"claims":[{"name":"gpu"}]}');
  });

  test("an app id with a lone UTF-16 surrogate: 200, ignored, warned", async () => {
    const { status, body } = await send(jobPod({ jobId: "app-\ud800", uid: "uid-surrogate" }));
    assert.equal(status, 200);
    assert.deepEqual([body.outcome, body.code], ["ignored", "bad-app-id"]);
    assert.ok(stack.logs.some((line) => line.level === "warn" && line.code === "bad-app-id"));
  });

  test("an app id over 1,024 bytes is not sent", async () => {
    assert.deepEqual((await send(jobPod({ jobId: "é".repeat(513), uid: "uid-long" }))).body.code, "bad-app-id");
    assert.equal((await send(jobPod({ jobId: "a".repeat(1024), uid: "uid-1024" }))).body.outcome, "sent");
  });

  for (const appId of [".", ".."]) {
    test(`the app id "${appId}" would leave its path segment: ignored, nothing sent`, async () => {
      const before = stack.measurements().length;
      assert.deepEqual((await send(jobPod({ jobId: appId, uid: `uid-dot-${appId.length}` }))).body.code, "bad-app-id");
      assert.equal(stack.measurements().length, before);
    });
  }

  test("app ids with / %2F ? # spaces and unicode stay in their segment", async () => {
    for (const [index, appId] of ["a/b", "a%2Fb", "q?x=1", "f#g", "with space", "ünï ☃ 🚀", "..a", ".a."].entries()) {
      assert.equal((await send(jobPod({ jobId: appId, uid: `uid-seg-${index}` }))).body.outcome, "sent", appId);
      const [post] = stack.measurements().filter((request) => request.headers["idempotency-key"] === `uid-seg-${index}`);
      const segments = post!.path.split("/");
      assert.deepEqual([segments.length, segments[1], segments[2], segments[4]], [5, "metrics", "acme", "servo"]);
      assert.equal(decodeURIComponent(segments[3]!), appId);
    }
  });

  for (const [label, uid] of [
    ["a newline", "uid-with\nnewline"],
    ["non-ASCII", "uid-ünïcode"],
  ]) {
    test(`a uid with ${label} is reported without an Idempotency-Key, not retried forever`, async () => {
      const before = stack.measurements().length;
      const { status, body } = await send(jobPod({ uid }));
      assert.deepEqual([status, body.outcome], [200, "sent"]);
      assert.equal(stack.measurements().length, before + 1);
      assert.equal(stack.measurements().at(-1)?.headers["idempotency-key"], undefined);
    });
  }

  test('timestamps like "1" and "2" are not dates: ignored as odd, nothing sent', async () => {
    const { body } = await send(jobPod({ uid: "uid-numeric-times", startedAt: "1", finishedAt: "2" }));
    assert.deepEqual([body.outcome, body.code], ["ignored", "bad-timestamps"]);
  });

  test("a local time without a zone is not read", async () => {
    assert.equal((await send(jobPod({ uid: "uid-local", startedAt: "2026-11-24T09:01:04", finishedAt: "2026-11-24T09:01:46" }))).body.code, "bad-timestamps");
  });

  test("an exit code of 1.5 or a string is not sent; the duration still is", async () => {
    for (const [index, exitCode] of [1.5, "1", null].entries()) {
      assert.equal((await send(jobPod({ uid: `uid-exit-${index}`, exitCode: exitCode as number }))).body.outcome, "sent");
      const [post] = stack.measurements().filter((request) => request.headers["idempotency-key"] === `uid-exit-${index}`);
      const { metrics, annotations } = (post?.body as { param: { metrics: { duration: { value: number } }; annotations: Record<string, unknown> } }).param;
      assert.equal(metrics.duration.value, 42);
      assert.equal("exitcode" in annotations, false);
    }
  });

  for (const [doneAt, label] of [
    ["1".repeat(400), "a 400-digit done-at"],
    ["1795510000", "a done-at before the pod was created"],
    ["1795510920.5", "a fractional done-at"],
  ] as const) {
    test(`${label}: no est_duration`, async () => {
      const uid = `uid-done-${label.length}`;
      await send(jobPod({ uid, annotations: { "done-at": doneAt } }));
      const [post] = stack.measurements().filter((request) => request.headers["idempotency-key"] === uid);
      assert.deepEqual(Object.keys((post?.body as { param: { metrics: object } }).param.metrics), ["duration", "perf"]);
    });
  }
});

describe("what is malformed is 400, per item in a batch", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack(JOB_ENV);
  });
  after(() => stack.close());

  test("binary-mode data that is not JSON is malformed, not a Pod", async () => {
    const response = await stack.post("not json at all", { "content-type": "text/plain", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "dev.knative.apiserver.resource.update" });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as Answer).error ?? "", /must be a JSON object \(the resource\), got bytes that are not JSON/);
  });

  test("one malformed item does not stop the others: each has its outcome, 200", async () => {
    const good = podEvent(jobPod({ uid: "uid-batch-good" }));
    const response = await stack.post(JSON.stringify([{ ...good, id: 7 }, good, { ...good, id: "x", data: "text" }]), { "content-type": "application/cloudevents-batch+json" });
    assert.equal(response.status, 200);
    const { outcomes } = (await response.json()) as Answer;
    assert.deepEqual(outcomes?.map((outcome) => outcome.outcome), ["malformed", "sent", "malformed"]);
    assert.match(outcomes?.[0]?.error ?? "", /^batch item 0: missing required CloudEvent attribute "id"/);
    assert.equal(stack.measurements().filter((request) => request.headers["idempotency-key"] === "uid-batch-good").length, 1);
  });

  test("a batch with only malformed items is 400", async () => {
    const response = await stack.post(JSON.stringify([{ specversion: "1.0" }, 5]), { "content-type": "application/cloudevents-batch+json" });
    assert.equal(response.status, 400);
  });
});

describe("a container that restarts is finished only when its pod is", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack(JOB_ENV);
  });
  after(() => stack.close());

  const onFailure = (facts: { phase: string; state: object; lastState?: object; restartCount?: number; uid: string }) => {
    const pod = jobPod({ uid: facts.uid }) as { spec: Record<string, unknown>; status: Record<string, unknown> };
    pod.spec.restartPolicy = "OnFailure";
    pod.status = { phase: facts.phase, containerStatuses: [{ name: "worker", restartCount: facts.restartCount ?? 0, state: facts.state, ...(facts.lastState ? { lastState: facts.lastState } : {}) }] };
    return pod;
  };
  const failedAttempt = { terminated: { exitCode: 1, reason: "Error", startedAt: "2026-11-24T09:01:04Z", finishedAt: "2026-11-24T09:01:14Z" } };
  const success = { terminated: { exitCode: 0, reason: "Completed", startedAt: "2026-11-24T09:01:30Z", finishedAt: "2026-11-24T09:02:30Z" } };

  test("a failed first attempt while the pod runs on is not reported; the final success is, with the restart count", async () => {
    const first = await stack.send(podEvent(onFailure({ uid: "uid-restart", phase: "Running", state: failedAttempt })));
    assert.equal(((await first.json()) as Answer).code, "not-finished");
    const waiting = await stack.send(podEvent(onFailure({ uid: "uid-restart", phase: "Running", state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: failedAttempt, restartCount: 1 })));
    assert.equal(((await waiting.json()) as Answer).code, "not-finished");
    const done = await stack.send(podEvent(onFailure({ uid: "uid-restart", phase: "Succeeded", state: success, restartCount: 1 })));
    assert.equal(((await done.json()) as Answer).outcome, "sent");
    const posts = stack.measurements().filter((request) => request.headers["idempotency-key"] === "uid-restart");
    assert.equal(posts.length, 1);
    const { metrics, annotations } = (posts[0]?.body as { param: { metrics: { duration: { value: number } }; annotations: Record<string, unknown> } }).param;
    assert.deepEqual([metrics.duration.value, annotations.exitcode, annotations.restarts], [60, 0, 1]);
  });

  test("deleted while waiting to restart: the last attempt is reported when the delete can be believed (invoke's files)", async () => {
    const pod = onFailure({ uid: "uid-restart-deleted", phase: "Running", state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: failedAttempt, restartCount: 3 });
    const fn = createFunction(loadConfig({ ...JOB_ENV, OPTUNE_URL: stack.receiver.template, OPTUNE_DEDUPE: "memory" }), { print: () => {}, logLine: () => {}, trustedInput: true });
    try {
      assert.equal((await fn.handle({ kind: "resource", action: "delete", pod })).kind, "sent");
    } finally {
      fn.close();
    }
    const [post] = stack.measurements().filter((request) => request.headers["idempotency-key"] === "uid-restart-deleted");
    const { annotations } = (post?.body as { param: { annotations: Record<string, unknown> } }).param;
    assert.deepEqual([annotations.exitcode, annotations.restarts], [1, 3]);
  });

  test("deleted while waiting to restart, over HTTP without event authentication: not believed, and says why", async () => {
    const pod = onFailure({ uid: "uid-restart-deleted-2", phase: "Running", state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: failedAttempt, restartCount: 3 });
    const answer = (await (await stack.send(podEvent(pod, "delete"))).json()) as Answer;
    assert.deepEqual([answer.outcome, answer.code], ["ignored", "unconfirmed-delete"]);
    assert.equal(stack.measurements().filter((request) => request.headers["idempotency-key"] === "uid-restart-deleted-2").length, 0);
  });

  test("deleted while running: not finished", async () => {
    const response = await stack.send(podEvent(onFailure({ uid: "uid-restart-running", phase: "Running", state: { running: {} }, lastState: failedAttempt }), "delete"));
    assert.equal(((await response.json()) as Answer).code, "not-finished");
  });

  test("restartPolicy Never reports the current state as before, without a restart count", async () => {
    const pod = onFailure({ uid: "uid-never", phase: "Running", state: failedAttempt });
    pod.spec.restartPolicy = "Never";
    assert.equal(((await (await stack.send(podEvent(pod))).json()) as Answer).outcome, "sent");
    const [post] = stack.measurements().filter((request) => request.headers["idempotency-key"] === "uid-never");
    assert.equal("restarts" in (post?.body as { param: { annotations: object } }).param.annotations, false);
  });
});

describe("the token never leaves the Authorization header", () => {
  test("Optune (or a proxy) echoing the request headers in a 401: neither the answer nor the log holds the token", async () => {
    const stack = await startStack(JOB_ENV, {
      respond: (request) => ({ status: 401, body: `you sent: ${JSON.stringify(request.headers)}` }),
    });
    try {
      const response = await stack.send(podEvent(jobPod({ uid: "uid-leak" })));
      const text = await response.text();
      assert.equal(response.status, 503);
      assert.equal(JSON.parse(text).error, "Optune answered 401 Unauthorized");
      assert.ok(!text.includes("SECRET-TOKEN-123"));
      const excerpt = stack.logs.find((line) => line.msg === "optune answered an error");
      assert.match(String(excerpt?.answer), /you sent: .*"authorization":"Bearer \[redacted\]"/);
    } finally {
      await stack.close();
    }
    assert.ok(!stack.logText().includes("SECRET-TOKEN-123"));
  });
});

describe("the memory ledger is bounded by bytes, not only by count", () => {
  const forged = (index: number) => ({ metadata: { namespace: "batch", name: `forged-${index}`, uid: `${index}-${"u".repeat(3.5 * 1024 * 1024)}` } });

  test("25 pods with forged 3.5 MiB uids: each remembered in at most 64 characters, and each still known as reported", async () => {
    const ledger = memoryLedger();
    for (let index = 0; index < 25; index++) {
      const claim = await ledger.claim(forged(index), { deleted: false });
      assert.ok(claim.granted);
      await claim.markSent();
    }
    assert.ok(ledger.keyChars() <= 25 * 2 * 64, `${ledger.keyChars()} characters held`);
    for (let index = 0; index < 25; index++) assert.deepEqual(await ledger.claim(forged(index), { deleted: false }), { granted: false, reason: "already reported by this instance" });
  });

  test("a uid as Kubernetes gives it is remembered as it is", async () => {
    const ledger = memoryLedger();
    const claim = await ledger.claim({ metadata: { namespace: "batch", name: "real", uid: "5b1f4b1e-3c52-4e9c-9d2a-0a6f1c7e8b21" } }, { deleted: false });
    assert.ok(claim.granted);
    await claim.markSent();
    assert.equal(ledger.keyChars(), 2 * 36);
  });
});
