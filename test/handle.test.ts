import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseAppIdPath } from "../handler/jobs/app-id.js";
import { createHandler, type HandlerDeps } from "../handler/measure/handle.js";
import { memoryLedger, type ReportLedger } from "../handler/measure/ledger.js";
import { silentLogger } from "../handler/edges/log.js";
import type { DeliveryResult, OutboundMessage } from "../handler/edges/optune.js";
import type { Pod } from "../handler/jobs/pod.js";
import type { PodEvent } from "../handler/measure/pod-event.js";
import { jobPod } from "./support/pods.js";

const criteria = { namespaces: new Set(["batch"]), appIdPath: parseAppIdPath("spec/containers/0/env/[JOBID]"), appIdSpec: "spec/containers/0/env/[JOBID]" };
const update = (pod: Pod): PodEvent => ({ kind: "resource", action: "update", pod });

function setup(results: DeliveryResult[] = [{ ok: true, attempts: 1 }], ledger: ReportLedger = memoryLedger()) {
  const sent: OutboundMessage[] = [];
  let release: () => void = () => {};
  let gate: Promise<void> | undefined;
  const deps: HandlerDeps = {
    criteria,
    ledger,
    log: silentLogger,
    sweep: { unavailable: "no Kubernetes API in these tests" },
    deliver: async (message) => {
      sent.push(message);
      if (gate) await gate;
      return results[Math.min(sent.length - 1, results.length - 1)]!;
    },
  };
  return {
    handle: createHandler(deps),
    sent,
    /** Holds deliveries until the returned function is called. */
    hold: () => {
      gate = new Promise((resolve) => (release = resolve));
      return () => release();
    },
  };
}

describe("handling pod events", () => {
  test("a finished job is sent once, to its app, keyed by the pod uid", async () => {
    const { handle, sent } = setup();
    assert.deepEqual(await handle(update(jobPod())), { kind: "sent", pod: "batch/resize-images-8kq2x", appId: "resize-images", runSeconds: 42, exitCode: 0 });
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.appId, "resize-images");
    assert.equal(sent[0]?.idempotencyKey, "c39ce9f7-656a-4ff0-ad36-43877d3ad4fb");
  });

  test("the same terminated pod again (update, then delete) is already reported", async () => {
    const { handle, sent } = setup();
    await handle(update(jobPod()));
    const again = await handle(update(jobPod({ resourceVersion: "2" })));
    const deleted = await handle({ kind: "resource", action: "delete", pod: jobPod({ resourceVersion: "3" }) });
    assert.equal(again.kind, "already-reported");
    assert.equal(deleted.kind, "already-reported");
    assert.equal(sent.length, 1);
  });

  test("another pod of the same job is reported too", async () => {
    const { handle, sent } = setup();
    await handle(update(jobPod()));
    await handle(update(jobPod({ name: "resize-images-zz9", uid: "other-uid" })));
    assert.equal(sent.length, 2);
  });

  test("a failed delivery is not recorded, so the next event for the pod tries again", async () => {
    const { handle, sent } = setup([{ ok: false, error: "Optune answered 503", attempts: 4, retryAfterSeconds: 9 }, { ok: true, attempts: 1 }]);
    assert.deepEqual(await handle(update(jobPod())), {
      kind: "failed",
      pod: "batch/resize-images-8kq2x",
      appId: "resize-images",
      error: "Optune answered 503",
      retryAfterSeconds: 9,
    });
    assert.equal((await handle(update(jobPod()))).kind, "sent");
    assert.equal(sent.length, 2);
  });

  test("a failure without a hint asks for a retry after 5 s", async () => {
    const { handle } = setup([{ ok: false, error: "Optune answered 401", attempts: 1 }]);
    const outcome = await handle(update(jobPod()));
    assert.ok(outcome.kind === "failed" && outcome.retryAfterSeconds === 5);
  });

  test("events for the same pod at the same time share one delivery", async () => {
    const { handle, sent, hold } = setup();
    const release = hold();
    const outcomes = Promise.all([handle(update(jobPod())), handle(update(jobPod())), handle({ kind: "resource", action: "delete", pod: jobPod() })]);
    release();
    assert.deepEqual((await outcomes).map((outcome) => outcome.kind), ["sent", "already-reported", "already-reported"]);
    assert.equal(sent.length, 1);
  });

  test("...and share its failure, so each is retried", async () => {
    const { handle, sent, hold } = setup([{ ok: false, error: "down", attempts: 3 }]);
    const release = hold();
    const outcomes = Promise.all([handle(update(jobPod())), handle(update(jobPod()))]);
    release();
    assert.deepEqual((await outcomes).map((outcome) => outcome.kind), ["failed", "failed"]);
    assert.equal(sent.length, 1);
  });

  test("events that are not about a finished job touch neither the ledger nor Optune", async () => {
    const ledger: ReportLedger = { claim: () => assert.fail("no claim for an ignored event") };
    const { handle, sent } = setup(undefined, ledger);
    for (const pod of [jobPod({ running: true }), jobPod({ namespace: "default" }), jobPod({ jobId: null })]) {
      assert.equal((await handle(update(pod))).kind, "ignored");
    }
    assert.equal(sent.length, 0);
  });

  test("a claim held by another instance, or lost with the pod, is not called already reported: nothing reached Optune from here", async () => {
    const cases: Array<[ReportLedger, string]> = [
      [{ claim: async () => ({ granted: false, reason: "being reported by servo-b since 2026-11-24T09:59:55.000Z", left: "in-flight" }) }, "claimed-elsewhere"],
      [{ claim: async () => ({ granted: false, reason: "the pod was deleted before it could be claimed", left: "gone" }) }, "pod-gone"],
      [{ claim: async () => ({ granted: false, reason: "the pod's annotation was not written by us", left: "foreign" }) }, "foreign-claim"],
    ];
    for (const [ledger, code] of cases) {
      const outcome = await setup(undefined, ledger).handle(update(jobPod()));
      assert.deepEqual([outcome.kind, outcome.kind === "ignored" ? outcome.code : undefined], ["ignored", code]);
    }
    const reported = await setup(undefined, { claim: async () => ({ granted: false, reason: "already reported (the pod's claim says sent)" }) }).handle(update(jobPod()));
    assert.equal(reported.kind, "already-reported");
  });

  test("a ledger that cannot answer makes the event fail (to be retried), not vanish", async () => {
    const { handle, sent } = setup(undefined, { claim: async () => Promise.reject(new Error("connection refused")) });
    const outcome = await handle(update(jobPod()));
    assert.ok(outcome.kind === "failed" && outcome.error === "cannot claim the pod: connection refused");
    assert.equal(sent.length, 0);
  });

  test("other event types are ignored", async () => {
    const { handle } = setup();
    assert.deepEqual(await handle({ kind: "other", type: "com.example.thing" }), { kind: "ignored", code: "other-event", reason: "event type com.example.thing is not handled" });
  });
});

describe("the in-memory ledger", () => {
  const context = { deleted: false };
  test("forgets the oldest pods beyond its capacity", async () => {
    const ledger = memoryLedger(2);
    for (const uid of ["a", "b", "c"]) {
      const claim = await ledger.claim(jobPod({ uid }), context);
      assert.ok(claim.granted);
      await claim.markSent();
    }
    assert.equal(ledger.size(), 2);
    assert.equal((await ledger.claim(jobPod({ uid: "a" }), context)).granted, true);
    assert.equal((await ledger.claim(jobPod({ uid: "c" }), context)).granted, false);
  });

  test("a released claim leaves no record", async () => {
    const ledger = memoryLedger();
    const claim = await ledger.claim(jobPod(), context);
    assert.ok(claim.granted);
    await claim.release(5);
    assert.equal((await ledger.claim(jobPod(), context)).granted, true);
  });
});
