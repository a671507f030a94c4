// Nothing lost: job pods held by our finalizer until Optune has their MEASUREMENT, on the real
// control plane (the real Job, TTL-after-finished and garbage collectors delete the pods), with
// the webhook adding the finalizer as registered and Knative's real adapter delivering events.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ManifestOptions, Release } from "../../handler/deploy/manifests.js";
import { TEST_OPTIONS } from "../support/manifest-variants.js";
import { HOLD_FINALIZER } from "../../handler/measure/hold.js";
import { CLAIM_ANNOTATION } from "../../handler/measure/claim.js";
import { connectKubernetes, type KubernetesError } from "../../handler/edges/kubernetes.js";
import { pingEvent } from "../support/cluster.js";
import { runCli } from "../support/cli.js";
import { kubernetes, RECEIVE_ADAPTER, skipUnlessInstalled } from "./components.js";
import { startTier, waitFor, type Tier } from "./tier.js";

const OPTIONS: ManifestOptions & Release = { ...TEST_OPTIONS, watch: ["batch"], account: "acme", webhook: true };
const RUN = "servo-k8s-multijob.test/";

/** A Job deleted with its pods the moment it finishes (ttlSecondsAfterFinished: 0). */
function ttlZeroJob(name: string): Record<string, unknown> {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: "batch" },
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: 0,
      template: {
        metadata: { annotations: { [`${RUN}run-time`]: "1s" } },
        spec: { restartPolicy: "Never", containers: [{ name: "worker", image: "registry.example.com/jobs/worker:1", env: [{ name: "JOBID", value: "held-job" }], resources: { limits: { cpu: "10m", memory: "16Mi" }, requests: { cpu: "10m", memory: "16Mi" } } }] },
      },
    },
  };
}

/** MEASUREMENTs Optune accepted, per pod uid. */
function acceptedPerUid(tier: Tier): Map<string, number> {
  const counts = new Map<string, number>();
  for (const request of tier.receiver.requests) {
    const body = request.body as { event?: string; param?: { annotations?: { uid?: string } } };
    if (body.event !== "MEASUREMENT" || request.status !== 200) continue;
    const uid = String(body.param?.annotations?.uid);
    counts.set(uid, (counts.get(uid) ?? 0) + 1);
  }
  return counts;
}

async function pods(tier: Tier, prefix: string): Promise<any[]> {
  const answer = await tier.server.request("GET", "/api/v1/namespaces/batch/pods");
  return (answer.body.items as any[]).filter((pod) => String(pod.metadata.name).startsWith(prefix));
}

/** Creates `count` TTL-0 Jobs and returns the uids of their pods, once each has one. */
async function createJobs(tier: Tier, prefix: string, count: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    const created = await tier.server.request("POST", "/apis/batch/v1/namespaces/batch/jobs", ttlZeroJob(`${prefix}-${index}`));
    assert.equal(created.status, 201, JSON.stringify(created.body).slice(0, 300));
  }
}

/** Waits until `count` pods of these Jobs are held: being deleted (their Job finished and went), our finalizer still on them. */
async function held(tier: Tier, prefix: string, count: number): Promise<any[]> {
  return waitFor(`${count} ${prefix} pods held`, async () => {
    const list = (await pods(tier, prefix)).filter((pod) => pod.metadata.deletionTimestamp !== undefined && (pod.metadata.finalizers ?? []).includes(HOLD_FINALIZER));
    return list.length === count ? list : undefined;
  }, 180_000);
}

/** Pings every replica (as the PingSource would) until `done` holds. */
async function sweepUntil(tier: Tier, what: string, done: () => Promise<boolean>): Promise<void> {
  let id = 0;
  await waitFor(what, async () => {
    if (await done()) return true;
    await Promise.all(tier.replicas.map((replica) => replica.send(pingEvent(`ping-${++id}`)).catch(() => undefined)));
    return undefined;
  }, 180_000);
}

describe(`nothing lost on Kubernetes ${kubernetes("newest").version}: job pods held until reported`, { skip: skipUnlessInstalled("newest", [RECEIVE_ADAPTER]) }, () => {
  let tier: Tier;
  before(async () => {
    tier = await startTier({ options: OPTIONS, replicas: 2 });
    await tier.startAdapters();
  });
  after(async () => {
    await tier?.stop();
  });

  test("TTL-0 Jobs, their pods deleted the moment they finish, nothing down: each reported once, none left", async () => {
    await createJobs(tier, "instant", 10);
    await waitFor("10 instant pods reported, and gone", async () => {
      const left = await pods(tier, "instant");
      const reported = [...acceptedPerUid(tier).values()].reduce((sum, count) => sum + count, 0);
      return left.length === 0 && reported >= 10 ? true : undefined;
    });
    assert.equal(acceptedPerUid(tier).size, 10);
    assert.ok([...acceptedPerUid(tier).values()].every((count) => count === 1), JSON.stringify([...acceptedPerUid(tier)]));
  });

  test("50 TTL-0 Jobs finish while Optune answers 503 for longer than every retry window; then it recovers: 50 MEASUREMENTs, none twice, no pod left", async () => {
    const before = new Set(acceptedPerUid(tier).keys());
    const script = tier.receiver.respond;
    tier.receiver.respond = (request) => ((request.body as { event?: string }).event === "MEASUREMENT" ? { status: 503, headers: { "retry-after": "1" }, body: "{}" } : script(request));
    try {
      await createJobs(tier, "outage", 50);
      const list = await held(tier, "outage", 50);
      // Longer than the adapter's retries (~3 s) and more: the pods wait.
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      assert.equal((await held(tier, "outage", 50)).length, 50, "still held");
      tier.receiver.respond = script;
      const uids = new Set(list.map((pod) => pod.metadata.uid as string));
      await sweepUntil(tier, "every outage pod reported and gone", async () => (await pods(tier, "outage")).length === 0);
      const accepted = acceptedPerUid(tier);
      for (const uid of uids) assert.equal(accepted.get(uid), 1, `pod ${uid}: ${accepted.get(uid) ?? 0} MEASUREMENTs`);
      assert.equal([...accepted.keys()].filter((uid) => !before.has(uid)).length, 50);
    } finally {
      tier.receiver.respond = script;
    }
  });

  test("every function replica stopped while Jobs finish, started again later: the sweep at start reports them", async () => {
    await tier.stopReplicas();
    let started = false;
    try {
      await createJobs(tier, "nobody", 5);
      const list = await held(tier, "nobody", 5);
      await new Promise((resolve) => setTimeout(resolve, 5000)); // past the adapter's retries: its events are dropped
      await tier.startReplicas();
      started = true;
      // No ping: the replicas sweep on their own soon after they start.
      await waitFor("every pod reported and gone after the replicas started", async () => ((await pods(tier, "nobody")).length === 0 ? true : undefined), 60_000);
      const accepted = acceptedPerUid(tier);
      for (const pod of list) assert.equal(accepted.get(pod.metadata.uid), 1);
    } finally {
      if (!started) await tier.startReplicas();
    }
  });

  test("Optune down for good: a held pod is let go at OPTUNE_HOLD, counted lost in /metrics", async () => {
    const script = tier.receiver.respond;
    tier.receiver.respond = (request) => ((request.body as { event?: string }).event === "MEASUREMENT" ? { status: 503, body: "{}" } : script(request));
    try {
      await createJobs(tier, "forever", 2);
      await held(tier, "forever", 2);
      await tier.restartReplica(0, { OPTUNE_HOLD: "5" });
      await new Promise((resolve) => setTimeout(resolve, 6000));
      const sweeper = tier.replicas[0]!;
      await waitFor("the held pods let go", async () => {
        await sweeper.send(pingEvent(`ping-bound-${Date.now()}`));
        return (await pods(tier, "forever")).length === 0 ? true : undefined;
      }, 60_000);
      const metrics = await (await fetch(new URL("/metrics", sweeper.fn.url))).text();
      assert.match(metrics, /servo_k8s_multijob_measurements_lost_total\{reason="held_too_long"\} 2/);
    } finally {
      tier.receiver.respond = script;
      await tier.restartReplica(0);
    }
  });

  test("the function uninstalled with pods held: release lets every one go", async () => {
    await tier.stopReplicas();
    try {
      await createJobs(tier, "uninstalled", 3);
      await held(tier, "uninstalled", 3);
      const released = await runCli(["release"], { KUBECONFIG: tier.server.kubeconfig() });
      assert.equal(released.code, 0, released.stderr);
      assert.match(released.stderr, /3 of 3 held pods let go, 3 of them without their MEASUREMENT/);
      await waitFor("the released pods gone", async () => ((await pods(tier, "uninstalled")).length === 0 ? true : undefined), 60_000);
    } finally {
      await tier.startReplicas();
    }
  });
});

describe(`the function's pod patches on Kubernetes ${kubernetes("newest").version}: a ValidatingAdmissionPolicy narrows RBAC's patch`, { skip: skipUnlessInstalled("newest") }, () => {
  let tier: Tier;
  before(async () => {
    tier = await startTier({ options: OPTIONS, replicas: 1 });
  });
  after(async () => {
    await tier?.stop();
  });

  const podNamed = (name: string) => ({ apiVersion: "v1", kind: "Pod", metadata: { name, labels: { app: "x" }, annotations: { team: "a" } }, spec: { nodeName: "no-such-node", containers: [{ name: "worker", image: "registry.example.com/jobs/worker:1", resources: { limits: { cpu: "10m", memory: "16Mi" }, requests: { cpu: "10m", memory: "16Mi" } } }] } });
  /**
   * A valid image update: a merge patch replaces the whole list, so the container goes in as the
   * API server stores it (with the volume mounts admission added), only its image changed.
   */
  const evilImage = async (name: string) => {
    const stored = (await tier.server.request("GET", `/api/v1/namespaces/batch/pods/${name}`)).body;
    return { spec: { containers: [{ ...stored.spec.containers[0], image: "registry.example.com/evil:1" }] } };
  };
  const statusOf = (name: string) => {
    const api = connectKubernetes({ kind: "files", paths: [tier.functionKubeconfig] }, { timeoutMs: 10_000 });
    return (patch: object) => api.patch("batch", name, patch).then(() => 200, (error: KubernetesError) => error.status);
  };

  test("without the policy's binding, RBAC's patch alone lets the function's token change a pod's image", async () => {
    const binding = tier.documents.find((document) => document.kind === "ValidatingAdmissionPolicyBinding")!;
    const path = `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${binding.metadata.name}`;
    assert.equal((await tier.server.request("DELETE", path)).status, 200);
    try {
      assert.equal((await tier.server.request("POST", "/api/v1/namespaces/batch/pods", podNamed("unguarded"))).status, 201);
      const status = statusOf("unguarded");
      // The API server drops the binding within about a second.
      await waitFor("the image changed", async () => ((await status(await evilImage("unguarded"))) === 200 ? true : undefined), 30_000);
    } finally {
      assert.equal((await tier.server.request("POST", "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings", binding)).status, 201);
      const status = statusOf("unguarded");
      await waitFor("the binding in force again", async () => ((await status({ metadata: { labels: { app: `z${Date.now()}` } } })) !== 200 ? true : undefined), 30_000);
    }
  });

  test("with the function's token: its claim annotation and its finalizer may change; the image, the labels and other annotations may not", async () => {
    assert.equal((await tier.server.request("POST", "/api/v1/namespaces/batch/pods", podNamed("patched"))).status, 201);
    const status = statusOf("patched");
    assert.equal(await status({ metadata: { annotations: { [CLAIM_ANNOTATION]: '{"state":"sent"}' } } }), 200, "the claim");
    assert.equal(await status({ metadata: { finalizers: [HOLD_FINALIZER] } }), 200, "the finalizer added");
    assert.equal(await status({ metadata: { finalizers: null } }), 200, "the finalizer removed");
    assert.notEqual(await status(await evilImage("patched")), 200, "the image");
    assert.notEqual(await status({ metadata: { labels: { app: "y" } } }), 200, "a label");
    assert.notEqual(await status({ metadata: { annotations: { team: "b" } } }), 200, "another annotation");
    assert.notEqual(await status({ metadata: { finalizers: ["example.com/other"] } }), 200, "another finalizer");
    const stored = (await tier.server.request("GET", "/api/v1/namespaces/batch/pods/patched")).body;
    assert.equal(stored.spec.containers[0].image, "registry.example.com/jobs/worker:1");
    assert.deepEqual([stored.metadata.labels, stored.metadata.annotations.team], [{ app: "x" }, "a"]);
  });
});
