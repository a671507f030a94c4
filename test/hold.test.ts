// Held until reported: the pure rules of our finalizer, the webhook's patch, and the claims and
// the sweep against the fake API server (the real API server's finalizer semantics are proved in
// test/cluster/hold.test.ts).
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { holdPatch } from "../handler/adjust/patch.js";
import { applyPatch } from "../handler/adjust/apply-patch.js";
import { createAdmitter } from "../handler/adjust/admit.js";
import { connectKubernetes, type PodApi } from "../handler/edges/kubernetes.js";
import { holdsPods, loadConfig } from "../handler/edges/config.js";
import { createLogger } from "../handler/edges/log.js";
import { noMetrics, type Metrics } from "../handler/edges/metrics.js";
import type { Pod } from "../handler/jobs/pod.js";
import { CLAIM_ANNOTATION, releasedValue, sentValue } from "../handler/measure/claim.js";
import { createHandler } from "../handler/measure/handle.js";
import { finalizersWithHold, finalizersWithoutHold, heldTooLong, HOLD_FINALIZER, isHeld, nothingWillFinish } from "../handler/measure/hold.js";
import { annotationLedger, memoryLedger } from "../handler/measure/ledger.js";
import { releaseHeld } from "../handler/measure/release.js";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.js";
import { jobPod } from "./support/pods.js";
import { startStack } from "./support/stack.js";
import { START_SWEEP_DELAY_MS } from "../handler/measure/lifecycle.js";

const NOW = Date.parse("2026-11-24T10:00:00Z");
const HOUR = 3_600_000;
const JOB_TRACKING = "batch.kubernetes.io/job-tracking";

function withMetadata(pod: Pod, metadata: Record<string, unknown>, spec: Record<string, unknown> = {}, status: Record<string, unknown> = {}): Pod {
  return { ...pod, metadata: { ...pod.metadata, ...metadata }, spec: { ...pod.spec, nodeName: "node-1", ...spec }, status: { ...pod.status, ...status } };
}
const held = (metadata: Record<string, unknown> = {}, spec?: Record<string, unknown>, status?: Record<string, unknown>) =>
  withMetadata(jobPod(), { finalizers: [JOB_TRACKING, HOLD_FINALIZER], ...metadata }, spec, status);
const deleting = (msAgo: number) => ({ deletionTimestamp: new Date(NOW - msAgo).toISOString() });

describe("holding a pod: the pure rules", () => {
  test("a pod is held while our finalizer is in its list", () => {
    assert.equal(isHeld(held()), true);
    assert.equal(isHeld(withMetadata(jobPod(), { finalizers: [JOB_TRACKING] })), false);
    assert.equal(isHeld(withMetadata(jobPod(), { finalizers: "optune.ai/measurement" })), false);
  });

  test("the claim adds our finalizer after the others, unless it is there or the pod is being deleted", () => {
    assert.deepEqual(finalizersWithHold(withMetadata(jobPod(), { finalizers: [JOB_TRACKING] })), [JOB_TRACKING, HOLD_FINALIZER]);
    assert.deepEqual(finalizersWithHold(jobPod()), [HOLD_FINALIZER]);
    assert.equal(finalizersWithHold(held()), undefined);
    assert.equal(finalizersWithHold(withMetadata(jobPod(), deleting(0))), undefined, "the API server refuses new finalizers on a pod being deleted");
  });

  test("letting go keeps every other finalizer, and deletes the field when ours was the last", () => {
    assert.deepEqual(finalizersWithoutHold(held()), [JOB_TRACKING]);
    assert.equal(finalizersWithoutHold(withMetadata(jobPod(), { finalizers: [HOLD_FINALIZER] })), null);
  });

  test("the bound counts from the deletion, not from the finish", () => {
    assert.equal(heldTooLong(held(deleting(24 * HOUR)), NOW, 24 * HOUR), true);
    assert.equal(heldTooLong(held(deleting(24 * HOUR - 1)), NOW, 24 * HOUR), false);
    assert.equal(heldTooLong(held(), NOW, 1), false, "a pod not being deleted waits on nobody");
  });

  test("nothing will finish in a pod being deleted that never reached a node, or whose phase is final", () => {
    assert.equal(nothingWillFinish(held(deleting(0), { nodeName: undefined })), true);
    assert.equal(nothingWillFinish(held(deleting(0), {}, { phase: "Failed" })), true);
    assert.equal(nothingWillFinish(held(deleting(0), {}, { phase: "Running" })), false, "the kubelet will stop its containers and say so");
    assert.equal(nothingWillFinish(held({}, {}, { phase: "Failed" })), false, "not being deleted");
  });

  test("only a function that writes claims holds pods: not in memory mode, not dry, not with OPTUNE_HOLD=0", () => {
    const base = { POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", OPTUNE_DEDUPE: "annotation", KUBECONFIG: "/nonexistent" };
    const config = (env: Record<string, string>) => loadConfig({ ...base, ...env }, { exists: () => true });
    assert.equal(config({}).holdMs, 86_400_000);
    assert.equal(holdsPods(config({})), true);
    assert.equal(holdsPods(config({ OPTUNE_HOLD: "0" })), false);
    assert.equal(holdsPods(config({ OPTUNE_DEDUPE: "memory" })), false);
    assert.equal(holdsPods(loadConfig({ POD_NAMESPACES: "batch", KUBECONFIG: "/nonexistent" }, { exists: () => true })), false, "a dry run");
  });
});

describe("the webhook holds every job pod it admits, in its admission patch", () => {
  test("a pod without finalizers gets the list; one with finalizers gets ours appended", () => {
    const bare = jobPod();
    assert.deepEqual(holdPatch(bare), [{ op: "add", path: "/metadata/finalizers", value: [HOLD_FINALIZER] }]);
    const tracked = withMetadata(bare, { finalizers: [JOB_TRACKING] });
    assert.deepEqual(applyPatch(tracked, holdPatch(tracked)).metadata?.finalizers, [JOB_TRACKING, HOLD_FINALIZER]);
    assert.deepEqual(holdPatch(held()), []);
  });

  const admitterFor = (hold: boolean) =>
    createAdmitter({
      criteria: loadConfig({ POD_NAMESPACES: "batch" }),
      ranges: loadConfig({}).ranges,
      budgetMs: 1000,
      deliver: async () => ({ ok: true, attempts: 1, answer: '{"status":"ok","command":"MEASURE"}' }),
      hold,
    });
  const review = (object: Pod, namespace = "batch") => ({ uid: "u1", operation: "CREATE", resource: "/pods", namespace, dryRun: false, object });

  test("a job pod Optune leaves unchanged is held all the same", async () => {
    const admission = await admitterFor(true)(review(jobPod({ running: true })));
    assert.deepEqual(admission.patch, [{ op: "add", path: "/metadata/finalizers", value: [HOLD_FINALIZER] }]);
  });

  test("a pod that is not a job, or holding off: no finalizer", async () => {
    assert.equal((await admitterFor(true)(review(jobPod({ running: true, namespace: "web" }), "web"))).patch, undefined);
    assert.equal((await admitterFor(false)(review(jobPod({ running: true })))).patch, undefined);
  });
});

describe("held pods against the API server's rules (fake API server)", () => {
  let fake: FakeApiServer;
  let api: PodApi;
  const lost: string[] = [];
  const metrics: Metrics = { ...noMetrics, lost: (reason) => lost.push(reason) };
  before(async () => {
    fake = await startFakeApiServer();
    api = connectKubernetes({ kind: "files", paths: [fake.kubeconfig] }, { timeoutMs: 5000 });
  });
  after(() => fake.close());
  const created: string[] = [];
  beforeEach(() => {
    lost.length = 0;
    fake.requests.length = 0;
    for (const name of created.splice(0)) if (fake.get("batch", name) !== undefined) fake.remove("batch", name);
  });

  const handlerFor = (limitMs: number, deliver = async () => ({ ok: true as const, attempts: 1 })) =>
    createHandler({
      criteria: loadConfig({ POD_NAMESPACES: "batch" }),
      ledger: annotationLedger({ api, memory: memoryLedger(), instance: "servo-a", ttlMs: 120_000, now: () => NOW, onRefused: () => {}, proofKey: "k", hold: limitMs > 0 }),
      deliver: deliver as never,
      log: createLogger("error", () => {}),
      pods: api,
      sweep: { pods: api, maxAgeMs: HOUR },
      metrics,
      now: () => NOW,
      hold: { api, limitMs },
    });
  const create = (name: string, metadata: Record<string, unknown> = {}, status: Record<string, unknown> = {}) => {
    created.push(name);
    return fake.create(withMetadata(jobPod({ name, uid: `uid-${name}` }), metadata, {}, status));
  };
  const finalizers = (name: string) => (fake.get("batch", name)?.metadata as { finalizers?: unknown } | undefined)?.finalizers;
  const patches = (name: string) => fake.requests.filter((request) => request.verb === "patch" && request.name === name).length;

  test("reported: the claim holds a pod the webhook did not, and the write that marks it sent lets it go: two writes", async () => {
    const pod = create("no-webhook", { finalizers: [JOB_TRACKING] });
    const outcome = await handlerFor(HOUR)(({ kind: "resource", action: "update", pod }));
    assert.equal(outcome.kind, "sent");
    assert.deepEqual(finalizers("no-webhook"), [JOB_TRACKING]);
    assert.equal(patches("no-webhook"), 2);
  });

  test("a delivery that fails keeps the pod held, with its claim released", async () => {
    const pod = create("optune-down");
    const outcome = await handlerFor(HOUR, async () => ({ ok: false, attempts: 1, error: "503", retryAfterSeconds: 5 }) as never)({ kind: "resource", action: "update", pod });
    assert.equal(outcome.kind, "failed");
    assert.deepEqual(finalizers("optune-down"), [HOLD_FINALIZER]);
  });

  test("held by the webhook: reported, then let go in the same write as the sent mark, other finalizers kept", async () => {
    const pod = create("webhook-held", { finalizers: [JOB_TRACKING, HOLD_FINALIZER] });
    assert.equal((await handlerFor(HOUR)({ kind: "resource", action: "update", pod })).kind, "sent");
    assert.deepEqual(finalizers("webhook-held"), [JOB_TRACKING]);
    assert.equal(patches("webhook-held"), 2);
  });

  test("the sent mark conflicts (the Job controller took its finalizer away meanwhile): read again, let go all the same", async () => {
    const pod = create("conflict", { finalizers: [JOB_TRACKING, HOLD_FINALIZER] });
    let once = false;
    // Just before the sent mark reaches the API server, the Job controller writes the pod.
    fake.fault = (request) => {
      if (once || request.verb !== "patch" || !/sending/.test(JSON.stringify(fake.get("batch", "conflict")?.metadata))) return undefined;
      once = true;
      fake.update("batch", "conflict", (mutable) => {
        mutable.metadata.finalizers = [HOLD_FINALIZER];
      });
      return undefined;
    };
    try {
      assert.equal((await handlerFor(HOUR)({ kind: "resource", action: "update", pod })).kind, "sent");
    } finally {
      fake.fault = undefined;
    }
    assert.equal(once, true);
    assert.equal(finalizers("conflict"), undefined);
    assert.match(JSON.stringify(fake.get("batch", "conflict")?.metadata), /\\"state\\":\\"sent\\"/);
  });

  test("a held pod being deleted whose claim says sent is let go on its next event", async () => {
    const pod = create("sent-held", { finalizers: [HOLD_FINALIZER], annotations: { [CLAIM_ANNOTATION]: sentValue("servo-b", NOW) }, ...deleting(1000) });
    assert.equal((await handlerFor(HOUR)({ kind: "resource", action: "update", pod })).kind, "already-reported");
    assert.equal(finalizers("sent-held"), undefined);
  });

  test("a held pod being deleted that never ran is let go, not counted lost", async () => {
    const pod = create("never-ran", { finalizers: [HOLD_FINALIZER], ...deleting(1000) }, { phase: "Failed", containerStatuses: [] });
    assert.equal((await handlerFor(HOUR)({ kind: "resource", action: "update", pod })).kind, "ignored");
    assert.equal(finalizers("never-ran"), undefined);
    assert.deepEqual(lost, []);
  });

  test("the sweep reports a held pod however long ago it finished, and lets go, counted lost, one held past OPTUNE_HOLD", async () => {
    const old = { annotations: { [CLAIM_ANNOTATION]: releasedValue("servo-b", NOW - 2 * HOUR, 3, NOW - HOUR) } };
    create("held-long", { finalizers: [HOLD_FINALIZER], ...old, ...deleting(2 * HOUR) });
    create("held-old-finish", { finalizers: [HOLD_FINALIZER], ...old, ...deleting(60_000) });
    const outcome = await handlerFor(HOUR)({ kind: "sweep" });
    assert.equal(outcome.kind, "swept");
    assert.deepEqual({ lost: (outcome as { lost: number }).lost, reported: (outcome as { reported: number }).reported }, { lost: 1, reported: 1 });
    assert.deepEqual(lost, ["held-too-long"]);
    assert.equal(finalizers("held-long"), undefined);
    assert.equal(finalizers("held-old-finish"), undefined, "reported, and let go by the sent mark");
  });

  test("holding turned off (OPTUNE_HOLD=0): the sweep lets every held pod go", async () => {
    create("off", { finalizers: [HOLD_FINALIZER], annotations: { [CLAIM_ANNOTATION]: releasedValue("servo-b", NOW - 1000, 1, NOW + HOUR) } });
    const outcome = await handlerFor(0)({ kind: "sweep" });
    assert.equal((outcome as { letGo: number }).letGo, 1);
    assert.equal(finalizers("off"), undefined);
  });

  test("release lets go of every held pod it finds, and says which were never reported", async () => {
    create("release-a", { finalizers: [JOB_TRACKING, HOLD_FINALIZER], ...deleting(1000) });
    create("release-b", { finalizers: [HOLD_FINALIZER], annotations: { [CLAIM_ANNOTATION]: sentValue("servo-b", NOW) } });
    create("release-c", { finalizers: [JOB_TRACKING] });
    const lines: string[] = [];
    const summary = await releaseHeld({ api, namespaces: ["batch"], dryRun: false, say: (line) => lines.push(line) });
    assert.deepEqual(summary, { held: 2, released: 2, unreported: 1, failed: 0 });
    assert.deepEqual(lines, ["released: batch/release-a (its MEASUREMENT was not sent)", "released: batch/release-b"]);
    assert.deepEqual([finalizers("release-a"), finalizers("release-b"), finalizers("release-c")], [[JOB_TRACKING], undefined, [JOB_TRACKING]]);
  });
});

describe("the sweep at start", () => {
  test("a job that finished while nobody listened is reported soon after the function starts, with no event at all", async () => {
    const fake = await startFakeApiServer();
    fake.create(jobPod({ name: "finished-before-start", uid: "uid-before-start", finishedAt: new Date(Date.now() - 60_000).toISOString() }));
    const stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", KUBECONFIG: fake.kubeconfig, OPTUNE_DEDUPE: "annotation", LOG_LEVEL: "error" });
    try {
      // START_SWEEP_DELAY_MS, with a wide margin for a busy machine.
      for (let waited = 0; stack.measurements().length === 0 && waited < START_SWEEP_DELAY_MS + 30_000; waited += 200) await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(stack.measurements().length, 1);
      assert.equal(fake.requests.filter((request) => request.verb === "list").length, 1, "one sweep");
    } finally {
      await stack.close();
      await fake.close();
    }
  });
});
