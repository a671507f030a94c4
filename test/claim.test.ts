// Claims in the pod: the pure rules, then the ledger against the fake API server.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { backoffSeconds, CLAIM_ANNOTATION, claimPatch, claimState, markPatch, releasedValue, sendingValue, sentValue, verdict } from "../handler/measure/claim.js";
import { connectKubernetes, type KubernetesError, type PodApi } from "../handler/edges/kubernetes.js";
import { annotationLedger, memoryLedger, type ReportLedger } from "../handler/measure/ledger.js";
import { podAnnotation, type Pod } from "../handler/jobs/pod.js";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.js";
import { jobPod } from "./support/pods.js";

const NOW = Date.parse("2026-11-24T10:00:00Z");
const withClaim = (value: string) => jobPod({ annotations: { [CLAIM_ANNOTATION]: value } });
const me = { instance: "servo-a", now: NOW, ttlMs: 120_000 };

describe("what a claim says, and who may claim", () => {
  test("no annotation: anyone may claim", () => {
    assert.deepEqual(claimState(jobPod()), { kind: "none" });
    assert.deepEqual(verdict({ kind: "none" }, me), { claim: true, failures: 0 });
  });

  test("sent: nobody may", () => {
    const state = claimState(withClaim(sentValue("servo-b", NOW)));
    assert.deepEqual(state, { kind: "sent" });
    assert.deepEqual(verdict(state, me), { claim: false, reason: "already reported (the pod's claim says sent)" });
  });

  test("a fresh claim by another instance: wait", () => {
    const state = claimState(withClaim(sendingValue("servo-b", NOW - 5000)));
    assert.deepEqual(state, { kind: "sending", instance: "servo-b", since: NOW - 5000, failures: 0 });
    assert.deepEqual(verdict(state, me), { claim: false, reason: "being reported by servo-b since 2026-11-24T09:59:55.000Z" });
  });

  test("a claim older than the TTL: its instance died, take it over (and its failure count)", () => {
    assert.deepEqual(verdict(claimState(withClaim(sendingValue("servo-b", NOW - 120_000, 2))), me), { claim: true, failures: 2 });
  });

  test("a fresh claim of our own is left alone too: it is the echo of our own write", () => {
    assert.equal(verdict(claimState(withClaim(sendingValue("servo-a", NOW - 1000))), me).claim, false);
  });

  test("released after a failed delivery: not before its retry time, then anyone may claim", () => {
    const state = claimState(withClaim(releasedValue("servo-b", NOW - 1000, 2, NOW + 9500)));
    assert.deepEqual(state, { kind: "released", failures: 2, retryAt: NOW + 9500 });
    assert.deepEqual(verdict(state, me), {
      claim: false,
      reason: "2 deliveries failed; the next one is due at 2026-11-24T10:00:09.500Z",
      retryAt: NOW + 9500,
      retryAfterSeconds: 10,
    });
    assert.deepEqual(verdict(state, { ...me, now: NOW + 9500 }), { claim: true, failures: 2 });
  });

  test("the backoff doubles with each failure from Optune's hint, up to 5 minutes", () => {
    assert.deepEqual([1, 2, 3, 4].map((failures) => backoffSeconds(5, failures)), [5, 10, 20, 40]);
    assert.equal(backoffSeconds(5, 10), 300);
    assert.equal(backoffSeconds(0, 1), 1);
  });

  test("a value we did not write is left alone", () => {
    for (const value of ["done", "{}", '{"state":"sending"}', '{"state":"sending","instance":"x","at":"never"}', '{"state":"released","failures":0,"retryAt":"2026-11-24T10:00:00Z"}', '{"state":"sending","instance":"x","at":"2026-11-24T10:00:00Z","failures":-1}']) {
      const state = claimState(withClaim(value));
      assert.equal(state.kind, "unreadable", value);
      assert.equal(verdict(state, me).claim, false);
    }
  });

  test("the patches: a conditional claim, an unconditional mark", () => {
    assert.deepEqual(claimPatch("42", "v"), { metadata: { resourceVersion: "42", annotations: { [CLAIM_ANNOTATION]: "v" } } });
    assert.deepEqual(markPatch("v"), { metadata: { annotations: { [CLAIM_ANNOTATION]: "v" } } });
    assert.equal(sendingValue("servo-a", NOW), '{"state":"sending","instance":"servo-a","at":"2026-11-24T10:00:00.000Z"}');
    assert.equal(
      releasedValue("servo-a", NOW, 1, NOW + 5000),
      '{"state":"released","instance":"servo-a","at":"2026-11-24T10:00:00.000Z","failures":1,"retryAt":"2026-11-24T10:00:05.000Z"}',
    );
  });
});

describe("the annotation ledger against the API", () => {
  let fake: FakeApiServer;
  let clock = NOW;
  const refused: KubernetesError[] = [];
  const ledgerFor = (instance: string): ReportLedger =>
    annotationLedger({
      api: connectKubernetes({ kind: "files", paths: [fake.kubeconfig] }, { timeoutMs: 5000 }),
      memory: memoryLedger(),
      instance,
      ttlMs: 120_000,
      now: () => clock,
      onRefused: (error) => refused.push(error),
      proofKey: "test-token",
    });
  const update = { deleted: false };
  const calls = (name: string) => fake.requests.filter((request) => request.name === name).map((request) => `${request.verb} ${request.status}`);
  const annotation = (name: string) => podAnnotation(fake.get("batch", name) ?? {}, CLAIM_ANNOTATION);
  const create = (name: string): Pod => fake.create(jobPod({ name, uid: `uid-${name}` }));

  before(async () => {
    fake = await startFakeApiServer();
  });
  after(() => fake.close());

  test("claim, then mark: two patches, and the pod says sent", async () => {
    const pod = create("p1");
    const claim = await ledgerFor("servo-a").claim(pod, update);
    assert.ok(claim.granted);
    assert.match(annotation("p1")!, /"state":"sending","instance":"servo-a"/);
    await claim.markSent();
    assert.match(annotation("p1")!, /"state":"sent"/);
    assert.deepEqual(calls("p1"), ["patch 200", "patch 200"]);
  });

  test("only the claim's answer is parsed (the MEASUREMENT is built from it); the sent mark's is not", async () => {
    const api = connectKubernetes({ kind: "files", paths: [fake.kubeconfig] }, { timeoutMs: 5000 });
    const asked: Array<boolean> = [];
    const recording: PodApi = { ...api, patch: (namespace, name, patch, options) => (asked.push(options?.answer !== false), api.patch(namespace, name, patch, options)) };
    const ledger = annotationLedger({ api: recording, memory: memoryLedger(), instance: "servo-a", ttlMs: 120_000, now: () => clock, onRefused: (error) => refused.push(error), proofKey: "test-token", hold: true });
    const claim = await ledger.claim(create("p1b"), update);
    assert.ok(claim.granted && claim.pod?.metadata?.uid === "uid-p1b");
    await claim.markSent();
    assert.deepEqual(asked, [true, false]);
    assert.match(annotation("p1b")!, /"state":"sent"/);
  });

  test("two instances claim the same pod at once: one wins; the other reads it and backs off", async () => {
    const pod = create("p2");
    const [a, b] = await Promise.all([ledgerFor("servo-a").claim(pod, update), ledgerFor("servo-b").claim(pod, update)]);
    assert.deepEqual([a.granted, b.granted].sort(), [false, true]);
    const loser = a.granted ? b : a;
    assert.ok(!loser.granted && /^being reported by servo-[ab] since/.test(loser.reason));
    assert.equal(!loser.granted && loser.left, "in-flight", "nothing reached Optune from the loser: it must not be called reported");
    assert.deepEqual(calls("p2").sort(), ["get 200", "patch 200", "patch 409"]);
  });

  test("an event that already shows sent needs no API call", async () => {
    const pod = create("p3");
    const claim = await ledgerFor("servo-a").claim(pod, update);
    assert.ok(claim.granted);
    await claim.markSent();
    const again = await ledgerFor("servo-b").claim(fake.get("batch", "p3") ?? pod, update);
    assert.ok(!again.granted && again.left === undefined, "sent: reported, nothing left");
    const claimed = fake.get("batch", "p3")!;
    const before = fake.requests.length;
    assert.equal((await ledgerFor("servo-b").claim(claimed, update)).granted, false);
    assert.equal(fake.requests.length, before);
  });

  test("a stale event: the patch conflicts, the fresh pod says sent, no second report", async () => {
    const stale = create("p4");
    const claim = await ledgerFor("servo-a").claim(stale, update);
    assert.ok(claim.granted);
    await claim.markSent();
    const second = await ledgerFor("servo-b").claim(stale, update);
    assert.ok(!second.granted && /already reported/.test(second.reason));
  });

  test("a failed delivery releases the claim with a retry time; events before it back off without a write", async () => {
    const pod = create("p5");
    const claim = await ledgerFor("servo-a").claim(pod, update);
    assert.ok(claim.granted);
    assert.equal(await claim.release(5), 5);
    assert.match(annotation("p5")!, /"state":"released","instance":"servo-a",.*"failures":1,"retryAt":"2026-11-24T10:00:05.000Z"/);
    const writes = fake.requests.length;
    const early = await ledgerFor("servo-b").claim(fake.get("batch", "p5")!, update);
    assert.ok(!early.granted && early.retryAfterSeconds === 5);
    assert.equal(fake.requests.length, writes);

    clock = NOW + 5000;
    try {
      const second = await ledgerFor("servo-b").claim(fake.get("batch", "p5")!, update);
      assert.ok(second.granted);
      assert.equal(await second.release(5), 10, "the second failure waits twice as long");
    } finally {
      clock = NOW;
    }
  });

  test("a claim left by a dead instance is taken over after the TTL, not before", async () => {
    const pod = create("p6");
    assert.ok((await ledgerFor("servo-dead").claim(pod, update)).granted);
    const claimed = fake.get("batch", "p6")!;
    assert.equal((await ledgerFor("servo-b").claim(claimed, update)).granted, false);
    clock += 120_000;
    try {
      assert.equal((await ledgerFor("servo-b").claim(claimed, update)).granted, true);
    } finally {
      clock = NOW;
    }
  });

  test("an authenticated delete is reported only when its last state carries no claim (or a released one)", async () => {
    const unclaimed = create("p7");
    fake.remove("batch", "p7");
    assert.equal((await ledgerFor("servo-a").claim(unclaimed, { deleted: true, trusted: true })).granted, true);
    const pod = create("p8");
    assert.ok((await ledgerFor("servo-a").claim(pod, update)).granted);
    const last = fake.remove("batch", "p8");
    const verdictOnDelete = await ledgerFor("servo-b").claim(last, { deleted: true, trusted: true });
    assert.equal(verdictOnDelete.granted, false);
    assert.deepEqual(calls("p7"), []);
  });

  // Nothing can confirm a delete (the pod is gone): without event authentication, only a claim
  // this function signed makes it believable.
  test("an unauthenticated delete: reported for a pod with our signed released claim, refused without a claim or with a forged one", async () => {
    const pod = create("p7b");
    const claim = await ledgerFor("servo-a").claim(pod, update);
    assert.ok(claim.granted);
    await claim.release(5);
    clock += 60_000;
    const released = fake.remove("batch", "p7b");
    assert.equal((await ledgerFor("servo-b").claim(released, { deleted: true })).granted, true);

    const unclaimed = jobPod({ name: "never-existed", uid: "uid-forged" });
    const forged = jobPod({ name: "never-existed", uid: "uid-forged", annotations: { [CLAIM_ANNOTATION]: releasedValue("servo-a", NOW, 1, NOW) } });
    const copied = jobPod({ name: "never-existed", uid: "uid-forged", annotations: { [CLAIM_ANNOTATION]: podAnnotation(released, CLAIM_ANNOTATION)! } });
    for (const delete_ of [unclaimed, forged, copied]) {
      const verdictOnDelete = await ledgerFor("servo-b").claim(delete_, { deleted: true });
      assert.ok(!verdictOnDelete.granted && verdictOnDelete.unconfirmed === true, JSON.stringify(verdictOnDelete));
    }
    assert.deepEqual(calls("never-existed"), []);
  });

  test("the memory ledger believes an unauthenticated delete only of a pod it saw finished", async () => {
    const memory = memoryLedger();
    const seen = jobPod({ name: "seen", uid: "uid-seen" });
    const claim = await memory.claim(seen, update);
    assert.ok(claim.granted);
    await claim.release(5); // the delivery failed: the delete is the next chance
    assert.equal((await memory.claim(seen, { deleted: true })).granted, true);
    const other = await memory.claim(jobPod({ name: "other", uid: "uid-other" }), { deleted: true });
    assert.ok(!other.granted && other.unconfirmed === true);
    assert.equal((await memory.claim(jobPod({ name: "other", uid: "uid-other" }), { deleted: true, trusted: true })).granted, true);
  });

  test("a pod deleted between the event and the claim is left to its delete event", async () => {
    const pod = create("p9");
    fake.remove("batch", "p9");
    const claim = await ledgerFor("servo-a").claim(pod, update);
    assert.ok(!claim.granted && /deleted before it could be claimed/.test(claim.reason));
  });

  test("403 on patch: the claim falls back to this instance's memory, and the refusal is reported", async () => {
    fake.forbidden.add("patch");
    try {
      const ledger = ledgerFor("servo-a");
      const pod = create("p10");
      const claim = await ledger.claim(pod, update);
      assert.ok(claim.granted);
      await claim.markSent();
      assert.equal((await ledger.claim(pod, update)).granted, false);
      assert.equal(refused.at(-1)?.verb, "patch");
    } finally {
      fake.forbidden.delete("patch");
    }
  });
});
