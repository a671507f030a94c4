// Exactly one MEASUREMENT per job across replicas, and none lost: several real function instances
// (annotation claims through the real Kubernetes client) against the fake API server, fed by a
// simulated ApiServerSource that duplicates, reorders, retries and drops events.
import assert from "node:assert/strict";
import { after, afterEach, describe, test } from "node:test";
import { startReceiver, type Receiver } from "../handler/demo/optune-stand-in.js";
import type { Pod } from "../handler/jobs/pod.js";
import { podAnnotation, podName, podUid } from "../handler/jobs/pod.js";
import { finishedRun } from "../handler/measure/termination.js";
import { collect, listening, startCli } from "./support/cli.js";
import { deletePod, finish, newJobPod, pingEvent, runToCompletion, seededRandom, startEventSource, startRunning, type Mode } from "./support/cluster.js";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.js";
import { startStack, type Stack } from "./support/stack.js";

interface Cluster {
  readonly api: FakeApiServer;
  readonly receiver: Receiver;
  readonly stacks: Stack[];
  readonly urls: () => string[];
}

let running: Cluster | undefined;

async function startCluster(instances: number, env: Record<string, string> = {}): Promise<Cluster> {
  const api = await startFakeApiServer();
  const receiver = await startReceiver();
  const stacks: Stack[] = [];
  for (let i = 0; i < instances; i++) {
    stacks.push(
      await startStack(
        { POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", KUBECONFIG: api.kubeconfig, OPTUNE_DEDUPE: "annotation", LOG_LEVEL: "warn", ...env },
        // These tests count what the pings' sweeps find: none soon after start.
        { receiver, sweepAtStart: false },
      ),
    );
  }
  running = { api, receiver, stacks, urls: () => stacks.map((stack) => stack.fn.url) };
  return running;
}

afterEach(async () => {
  if (running === undefined) return;
  for (const stack of running.stacks) await stack.close();
  await running.receiver.close();
  await running.api.close();
  running = undefined;
});

/** MEASUREMENTs Optune accepted, counted per pod uid. */
function accepted(receiver: Receiver): Map<string, number> {
  const counts = new Map<string, number>();
  for (const request of receiver.requests) {
    if (request.path.includes("/_global_/") || request.status !== 200) continue;
    const uid = String(request.headers["idempotency-key"]);
    counts.set(uid, (counts.get(uid) ?? 0) + 1);
  }
  return counts;
}

function assertExactlyOnce(receiver: Receiver, pods: readonly Pod[]): void {
  const counts = accepted(receiver);
  const twice = [...counts].filter(([, count]) => count > 1);
  const missing = pods.filter((pod) => !counts.has(podUid(pod)!));
  assert.deepEqual({ twice, missing: missing.map((pod) => pod.metadata?.name) }, { twice: [], missing: [] });
  assert.equal(counts.size, pods.length);
}

const JOBS = 200;
const jobPods = () => Array.from({ length: JOBS }, (_, index) => newJobPod(index));
/** Pods that are not jobs (no JOBID): their events must cost no Kubernetes call at all. */
const otherPods = () => Array.from({ length: 20 }, (_, index) => newJobPod(1000 + index, { jobId: undefined }));

for (const mode of ["resource", "reference"] as Mode[]) {
  describe(`exactly once in ${mode} mode`, () => {
    test(`3 instances, ${JOBS} jobs, 20 % of events delivered twice, some at the same time: exactly ${JOBS} MEASUREMENTs`, async (t) => {
      const cluster = await startCluster(3);
      const source = startEventSource({ api: cluster.api, targets: cluster.urls, mode, random: seededRandom(1), duplicateRate: 0.2 });
      const pods = jobPods();
      for (const pod of [...pods, ...otherPods()]) {
        cluster.api.create(pod);
        runToCompletion(cluster.api, pod);
      }
      await source.drain();
      for (const pod of pods) deletePod(cluster.api, pod);
      await source.drain();

      assertExactlyOnce(cluster.receiver, pods);
      assert.ok(source.stats.duplicates > 100, JSON.stringify(source.stats));
      assert.deepEqual(Object.keys(source.stats.byStatus), ["200"]);

      const requests = cluster.api.requests;
      const patches = requests.filter((request) => request.verb === "patch");
      // One claim and one mark per job; every other write attempt lost a race and read the pod.
      assert.equal(patches.filter((request) => request.status === 200).length, 2 * JOBS);
      const conflicts = patches.filter((request) => request.status === 409).length;
      if (mode === "resource") {
        assert.equal(requests.filter((request) => request.verb === "get").length, conflicts);
        assert.ok(!requests.some((request) => request.name?.startsWith("job-1")), "no call for pods that are not jobs");
      }
      t.diagnostic(`${mode}: ${requests.length} API calls for ${JOBS} jobs: ${patches.length} patches (${conflicts} conflicts), ${requests.filter((request) => request.verb === "get").length} gets`);
    });

    test("Optune answers 503 for a while: events get 503 and are redelivered; the sweep delivers what redelivery gave up on", async () => {
      const cluster = await startCluster(3, { OPTUNE_SEND_DEADLINE: "1" });
      let optuneDown = true;
      // "Retry-After: 1" within a 1 s deadline: each failing delivery gives up after one attempt.
      cluster.receiver.respond = () => (optuneDown ? { status: 503, headers: { "Retry-After": "1" }, body: "{}" } : { status: 200, body: "{}" });
      const source = startEventSource({ api: cluster.api, targets: cluster.urls, mode, random: seededRandom(2), duplicateRate: 0.2 });
      const pods = jobPods();
      for (const pod of pods) {
        cluster.api.create(pod);
        runToCompletion(cluster.api, pod);
      }
      await source.drain();
      assert.ok((source.stats.byStatus[503] ?? 0) > 0 && source.stats.gaveUp > 0, JSON.stringify(source.stats));
      assert.equal(accepted(cluster.receiver).size, 0);

      // Every pod now says when its next attempt is due; the sweep honours that, so wait for it.
      optuneDown = false;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, latestRetryAt(cluster.api, pods) - Date.now())));
      const swept = await source.send(pingEvent("ping-1"));
      assert.equal(swept.status, 200);
      assert.equal(accepted(cluster.receiver).size, JOBS, "the sweep reported every job");
      for (const pod of pods) deletePod(cluster.api, pod);
      await source.drain();
      assertExactlyOnce(cluster.receiver, pods);
    });

    test("10 % of the pods' terminated updates never arrive (a watch gap): the sweep finds all of them", async () => {
      const cluster = await startCluster(3);
      const random = seededRandom(3);
      const pods = jobPods();
      const gap = new Set(pods.filter(() => random() < 0.1).map((pod) => pod.metadata!.uid!));
      const source = startEventSource({
        api: cluster.api,
        targets: cluster.urls,
        mode,
        random,
        duplicateRate: 0.2,
        drop: (type, pod) => type === "MODIFIED" && gap.has(podUid(pod)!) && finishedRun(pod) !== undefined,
      });
      // The pods start and run, and every event so far arrives; then they finish, and the watch
      // misses the terminated updates of a tenth of them.
      for (const pod of pods) {
        cluster.api.create(pod);
        startRunning(cluster.api, pod);
      }
      await source.drain();
      for (const pod of pods) finish(cluster.api, pod);
      await source.drain();
      assert.equal(accepted(cluster.receiver).size, JOBS - gap.size);
      assert.ok(gap.size >= 10);

      const swept = await source.send(pingEvent("ping-1"));
      assert.deepEqual(pick(swept.body, ["reported", "alreadyReported", "failed"]), { reported: gap.size, alreadyReported: JOBS - gap.size, failed: 0 });
      assertExactlyOnce(cluster.receiver, pods);
    });
  });
}

function latestRetryAt(api: FakeApiServer, pods: readonly Pod[]): number {
  return Math.max(
    ...pods.map((pod) => {
      const claim = JSON.parse(podAnnotation(api.get("batch", podName(pod)!) ?? {}, "optune.ai/measurement") ?? "{}") as { state?: string; retryAt?: string };
      assert.equal(claim.state, "released", "each pod's failed delivery is recorded");
      return Date.parse(claim.retryAt!);
    }),
  );
}

function pick(body: unknown, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((key) => [key, (body as Record<string, unknown>)[key]]));
}

describe("an instance killed between claim and send", () => {
  let receiver: Receiver | undefined;
  after(() => receiver?.close());

  test("after the claim TTL the sweep reports that pod exactly once", async () => {
    // A TTL of 3 s: long enough that the first sweep surely comes before it, even on a busy machine.
    const cluster = await startCluster(1, { OPTUNE_CLAIM_TTL: "3", OPTUNE_SEND_DEADLINE: "0.5" });
    receiver = cluster.receiver;
    const pod = newJobPod(7);
    cluster.api.create(pod);
    runToCompletion(cluster.api, pod);

    // The doomed instance: a real process, killed with SIGKILL the moment its claim is written.
    const doomed = startCli(["serve"], {
      PORT: "0",
      POD_NAMESPACES: "batch",
      OPTUNE_ACCOUNT: "acme",
      OPTUNE_URL: cluster.receiver.template,
      KUBECONFIG: cluster.api.kubeconfig,
      OPTUNE_DEDUPE: "annotation",
      OPTUNE_CLAIM_TTL: "3",
      OPTUNE_SEND_DEADLINE: "0.5",
    });
    const exited = collect(doomed);
    const port = await listening(doomed);
    cluster.api.onPatched = async (patched) => {
      if (!/"state":"sending"/.test(podAnnotation(patched, "optune.ai/measurement") ?? "")) return;
      cluster.api.onPatched = undefined;
      doomed.kill("SIGKILL");
      await exited;
    };
    const source = startEventSource({ api: cluster.api, targets: () => [`http://127.0.0.1:${port}/`], mode: "resource", random: seededRandom(4) });
    await source.send({ ...pingEvent("unused"), type: "dev.knative.apiserver.resource.update", data: cluster.api.get("batch", podName(pod)!) });
    assert.equal((await exited).signal, "SIGKILL");
    assert.match(podAnnotation(cluster.api.get("batch", podName(pod)!) ?? {}, "optune.ai/measurement") ?? "", /"state":"sending"/);

    const survivor = startEventSource({ api: cluster.api, targets: cluster.urls, mode: "resource", random: seededRandom(5) });
    // Still claimed by the dead instance: left to it until the TTL, and not counted as reported (it is not).
    const early = await survivor.send(pingEvent("ping-early"));
    assert.deepEqual(pick(early.body, ["reported", "alreadyReported", "ignored"]), { reported: 0, alreadyReported: 0, ignored: 1 });

    const claimedAt = Date.parse((JSON.parse(podAnnotation(cluster.api.get("batch", podName(pod)!)!, "optune.ai/measurement")!) as { at: string }).at);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, claimedAt + 3100 - Date.now())));
    const late = await survivor.send(pingEvent("ping-late"));
    assert.deepEqual(pick(late.body, ["reported", "alreadyReported"]), { reported: 1, alreadyReported: 0 });
    const again = await survivor.send(pingEvent("ping-again"));
    assert.deepEqual(pick(again.body, ["reported", "alreadyReported"]), { reported: 0, alreadyReported: 1 });
    assertExactlyOnce(cluster.receiver, [pod]);
  });
});

describe("Kubernetes refuses the patch (403)", () => {
  test("measurements still go out with the in-memory record, and the log names the missing permission", async () => {
    const cluster = await startCluster(1, { LOG_LEVEL: "error" });
    cluster.api.forbidden.add("patch");
    const source = startEventSource({ api: cluster.api, targets: cluster.urls, mode: "resource", random: seededRandom(6), duplicateRate: 0.2 });
    const pods = Array.from({ length: 20 }, (_, index) => newJobPod(index));
    for (const pod of pods) {
      cluster.api.create(pod);
      runToCompletion(cluster.api, pod);
    }
    await source.drain();
    assertExactlyOnce(cluster.receiver, pods);
    const [stack] = cluster.stacks;
    const errors = stack!.logs.filter((line) => line.level === "error");
    assert.equal(errors.length, 1, "one error line a minute");
    assert.equal(errors[0]?.missing, "patch pods");
    assert.equal(errors[0]?.namespace, "batch");
    assert.ok(stack!.fn.refusals() >= 20);
  });
});

describe("the sweep", () => {
  test("lists page by page and reports only jobs that finished within OPTUNE_SWEEP_MAX_AGE", async () => {
    const cluster = await startCluster(1);
    const source = startEventSource({ api: cluster.api, targets: cluster.urls, mode: "resource", random: seededRandom(7), drop: () => true });
    const recent = Array.from({ length: 150 }, (_, index) => newJobPod(index));
    const old = Array.from({ length: 100 }, (_, index) => newJobPod(500 + index));
    for (const pod of recent) {
      cluster.api.create(pod);
      runToCompletion(cluster.api, pod, 30 * 60_000);
    }
    for (const pod of old) {
      cluster.api.create(pod);
      runToCompletion(cluster.api, pod, 2 * 3600_000);
    }

    const first = await source.send(pingEvent("ping-1"));
    assert.deepEqual(pick(first.body, ["outcome", "scanned", "reported", "alreadyReported", "failed", "tooOld"]), {
      outcome: "swept",
      scanned: 250,
      reported: 150,
      alreadyReported: 0,
      failed: 0,
      tooOld: 100,
    });
    const lists = cluster.api.requests.filter((request) => request.verb === "list");
    assert.deepEqual(
      lists.map((request) => [new URLSearchParams(request.query).get("limit"), new URLSearchParams(request.query).has("continue")]),
      [
        ["100", false],
        ["100", true],
        ["100", true],
      ],
    );
    assertExactlyOnce(cluster.receiver, recent);

    const second = await source.send(pingEvent("ping-2"));
    assert.deepEqual(pick(second.body, ["reported", "alreadyReported", "tooOld"]), { reported: 0, alreadyReported: 150, tooOld: 100 });
  });

  test("without claims (memory dedupe) a ping is ignored with a warning, never a resend of everything", async () => {
    const cluster = await startCluster(1, { OPTUNE_DEDUPE: "memory" });
    const source = startEventSource({ api: cluster.api, targets: cluster.urls, mode: "resource", random: seededRandom(8) });
    const answer = await source.send(pingEvent("ping-1"));
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { outcome: "ignored", code: "no-sweep" });
    assert.match(String(cluster.stacks[0]!.logs.find((line) => line.code === "no-sweep")?.reason), /a sweep needs OPTUNE_DEDUPE=annotation/);
    assert.equal(cluster.api.requests.length, 0);
  });
});

describe("servo-k8s-multijob sweep", () => {
  test("sweeps once from the command line and says what it did", async () => {
    const api = await startFakeApiServer();
    const receiver = await startReceiver();
    try {
      const pods = Array.from({ length: 3 }, (_, index) => newJobPod(index));
      for (const pod of pods) {
        api.create(pod);
        runToCompletion(api, pod);
      }
      const run = await collect(startCli(["sweep"], { POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", OPTUNE_URL: receiver.template, KUBECONFIG: api.kubeconfig }));
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /swept batch: 3 pods scanned, 3 reported, 0 already reported, 0 failed/);
      assert.equal(run.stdout.trim().split("\n").length, 3);
      assertExactlyOnce(receiver, pods);
    } finally {
      await receiver.close();
      await api.close();
    }
  });
});
