// Real batch/v1 Jobs end to end: the real Job and CronJob controllers make the pods, the real
// scheduler binds them to kwok's node, the webhook (registered as generated, matchConditions
// compiled by the real API server) adjusts them, kwok runs them for the time and exit code each
// asks for, Knative's real ApiServerSource adapter delivers every change to three function replicas
// through a round-robin proxy, and the replicas report each attempt to Optune exactly once (claims
// in pod annotations, on the generated ServiceAccount's token). Then the faults the real pipeline
// meets: a replica killed mid-run, the API server restarted under the adapter, an adapter started
// after jobs finished (the sweep finds them), Optune answering 503 within the adapter's retries.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type ManifestOptions, type Release } from "../../handler/deploy/manifests.js";
import { TEST_OPTIONS } from "../support/manifest-variants.js";
import { runCli } from "../support/cli.js";
import { pingEvent } from "../support/cluster.js";
import { kubernetes, RECEIVE_ADAPTER, skipUnlessInstalled, type KubernetesRelease } from "./components.js";
import { SMALL, startTier, waitFor, webhookSees, type Tier } from "./tier.js";

const WATCHED = ["batch", "etl"];
const OPTIONS: ManifestOptions & Release = { ...TEST_OPTIONS, watch: WATCHED, account: "acme", webhook: true };
const RUN = "servo-k8s-multijob.test/";

interface JobShape {
  readonly namespace: string;
  readonly name: string;
  readonly jobId: string;
  readonly runSeconds: number;
  readonly exitCode?: number;
  readonly spec?: Record<string, unknown>;
  readonly podSpec?: Record<string, unknown>;
  readonly annotations?: Record<string, string>;
}

/** A Job's pod template: one worker with the app id, resources Optune may change, the run kwok plays. */
function template(shape: JobShape): Record<string, unknown> {
  return {
    metadata: { annotations: { [`${RUN}run-time`]: `${shape.runSeconds}s`, [`${RUN}exit-code`]: String(shape.exitCode ?? 0), ...shape.annotations } },
    spec: {
      restartPolicy: "Never",
      containers: [{ name: "worker", image: "registry.example.com/jobs/worker:1", env: [{ name: "JOBID", value: shape.jobId }], resources: { limits: { cpu: "500m", memory: "256Mi" }, requests: { cpu: "500m", memory: "256Mi" } } }],
      ...shape.podSpec,
    },
  };
}

function job(shape: JobShape): Record<string, unknown> {
  return { apiVersion: "batch/v1", kind: "Job", metadata: { name: shape.name, namespace: shape.namespace }, spec: { backoffLimit: 0, template: template(shape), ...shape.spec } };
}

interface Measured {
  readonly pod: string;
  readonly uid: string;
  readonly duration: number | undefined;
  readonly exitcode: unknown;
  readonly settings: unknown;
  readonly jobId: string;
}

function measurements(tier: Tier): Measured[] {
  return tier.receiver.requests
    .filter((request) => !request.path.includes("_global_") && (request.body as { event?: string }).event === "MEASUREMENT" && request.status === 200)
    .map((request) => {
      const param = (request.body as { param: { metrics?: { duration?: { value: number } }; annotations?: Record<string, unknown> } }).param;
      return { pod: String(param.annotations?.pod), uid: String(param.annotations?.uid), duration: param.metrics?.duration?.value, exitcode: param.annotations?.exitcode, settings: param.annotations?.settings, jobId: decodeURIComponent(request.path.split("/").at(-2) ?? "") };
    });
}

/** The body Optune got for the pod with this uid (its MEASUREMENT), if any. */
function bodyFor(tier: Tier, uid: string): any {
  return tier.receiver.requests.find((request) => (request.body as any)?.param?.annotations?.uid === uid)?.body;
}

/** The pods of a Job, as the API server has them. */
async function podsOf(tier: Tier, namespace: string, jobName: string): Promise<any[]> {
  const answer = await tier.server.request("GET", `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(`batch.kubernetes.io/job-name=${jobName}`)}`);
  return answer.body.items as any[];
}

/** Waits until the Job is complete or failed, and every pod it made is reported; returns its pods. */
async function finished(tier: Tier, namespace: string, jobName: string, ms = 120_000): Promise<any[]> {
  return waitFor(`job ${namespace}/${jobName} finished and reported`, async () => {
    const status = (await tier.server.request("GET", `/apis/batch/v1/namespaces/${namespace}/jobs/${jobName}`)).body.status ?? {};
    const done = (status.conditions ?? []).some((condition: { type: string; status: string }) => (condition.type === "Complete" || condition.type === "Failed") && condition.status === "True");
    if (!done) return undefined;
    const pods = await podsOf(tier, namespace, jobName);
    const reported = new Set(measurements(tier).map((measured) => measured.uid));
    return pods.every((pod) => reported.has(pod.metadata.uid)) ? pods : undefined;
  }, ms);
}

/**
 * Optune, scripted: each admission's WHATS_NEXT gets an ADJUST to cpu 0.75, mem 384Mi, and the
 * WHATS_NEXT after its ADJUSTMENT a MEASURE; counted per app id, as admissions run side by side.
 */
function adjustEveryJob(tier: Tier): void {
  const adjusted = new Map<string, number>();
  tier.receiver.respond = (request) => {
    const { event } = request.body as { event?: string };
    const app = request.path;
    if (event === "ADJUSTMENT") adjusted.set(app, (adjusted.get(app) ?? 0) + 1);
    if (event !== "WHATS_NEXT") return { status: 200, body: "{}" };
    const pending = adjusted.get(app) ?? 0;
    if (pending > 0) {
      adjusted.set(app, pending - 1);
      return { status: 200, body: JSON.stringify({ cmd: "MEASURE" }) };
    }
    return { status: 200, body: JSON.stringify({ cmd: "ADJUST", param: { state: { application: { components: { worker: { settings: { cpu: { value: 0.75 }, mem: { value: 402653184 } } } } } } } }) };
  };
}

function assertOncePerPod(tier: Tier, pods: readonly any[]): void {
  const all = measurements(tier);
  for (const pod of pods) {
    const mine = all.filter((measured) => measured.uid === pod.metadata.uid);
    assert.equal(mine.length, 1, `${pod.metadata.namespace}/${pod.metadata.name}: ${mine.length} MEASUREMENTs`);
  }
}

for (const release of ["newest", "oldest"] as const satisfies readonly KubernetesRelease[]) {
  // On the oldest minor the README claims (1.28), native sidecars and backoffLimitPerIndex are alpha
  // (off): those shapes, and the fault scenarios, run on the newest release only.
  const newest = release === "newest";
  describe(`real Jobs on Kubernetes ${kubernetes(release).version}: the real Job controller, kwok and Knative's real ApiServerSource adapter`, { skip: skipUnlessInstalled(release, [RECEIVE_ADAPTER]) }, () => {
    let tier: Tier;

    before(async () => {
      tier = await startTier({ options: OPTIONS, release });
      adjustEveryJob(tier);
      // A LimitRange and a quota in force where the webhook adjusts: every patched pod must still pass.
      const bounds = await tier.server.request("POST", "/api/v1/namespaces/etl/limitranges", { apiVersion: "v1", kind: "LimitRange", metadata: { name: "bounds" }, spec: { limits: [{ type: "Container", max: { cpu: "2", memory: "1Gi" } }] } });
      const quota = await tier.server.request("POST", "/api/v1/namespaces/batch/resourcequotas", { apiVersion: "v1", kind: "ResourceQuota", metadata: { name: "jobs" }, spec: { hard: { "requests.cpu": "8", "limits.cpu": "8", "limits.memory": "8Gi" } } });
      await webhookSees(tier.webhook, "etl", bounds.body.metadata);
      await webhookSees(tier.webhook, "batch", quota.body.metadata);
      await tier.startAdapters();
      console.log(`# against ${tier.server.version}; ${tier.adapters.length} receive adapters (knative.dev/eventing)`);
    });
    after(async () => {
      await tier?.stop();
    });

    test(`${newest ? "a plain, an Indexed, a CronJob's, a sidecar's and a retried Job" : "a plain, an Indexed and a CronJob's Job"}: every attempt reported once, with its run time, exit code and settings`, async () => {
      const shapes: JobShape[] = [
        { namespace: "batch", name: "plain", jobId: "resize-images", runSeconds: 3 },
        { namespace: "etl", name: "indexed", jobId: "nightly-etl", runSeconds: 2, spec: { completionMode: "Indexed", completions: 2, parallelism: 2 } },
        ...(newest ? [{
          namespace: "batch",
          name: "with-sidecar",
          jobId: "shipped-logs",
          runSeconds: 2,
          podSpec: { initContainers: [{ name: "log-shipper", image: "registry.example.com/shipper:1", restartPolicy: "Always", resources: { limits: { cpu: "100m", memory: "64Mi" }, requests: { cpu: "100m", memory: "64Mi" } } }] },
        },
        {
          // Fails once (exit 1, counted by the pod failure policy), is retried, and succeeds.
          namespace: "etl",
          name: "retried",
          jobId: "flaky-load",
          runSeconds: 2,
          annotations: { [`${RUN}first-exit-code`]: "1" },
          spec: {
            completionMode: "Indexed",
            completions: 1,
            backoffLimit: undefined,
            backoffLimitPerIndex: 1,
            podFailurePolicy: { rules: [{ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget" }] }, { action: "Count", onExitCodes: { containerName: "worker", operator: "In", values: [1] } }] },
          },
        }] : []),
      ];
      for (const shape of shapes) {
        const created = await tier.server.request("POST", `/apis/batch/v1/namespaces/${shape.namespace}/jobs?fieldValidation=Strict`, job(shape));
        assert.equal(created.status, 201, `${shape.name}: ${JSON.stringify(created.body).slice(0, 400)}`);
      }
      // A CronJob every minute: its first Job comes at the next minute.
      const cron = { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "hourly-report", namespace: "batch" }, spec: { schedule: "* * * * *", concurrencyPolicy: "Forbid", jobTemplate: { spec: { backoffLimit: 0, template: template({ namespace: "batch", name: "", jobId: "hourly-report", runSeconds: 2 }) } } } };
      assert.equal((await tier.server.request("POST", "/apis/batch/v1/namespaces/batch/cronjobs?fieldValidation=Strict", cron)).status, 201);

      const byJob = new Map<string, any[]>();
      for (const shape of shapes) byJob.set(shape.name, await finished(tier, shape.namespace, shape.name));
      const cronJob = await waitFor("the CronJob's first Job", async () => {
        const jobs = (await tier.server.request("GET", "/apis/batch/v1/namespaces/batch/jobs")).body.items as any[];
        return jobs.find((item) => item.metadata.ownerReferences?.some((owner: { kind: string }) => owner.kind === "CronJob"))?.metadata.name as string | undefined;
      }, 150_000);
      await tier.server.request("PATCH", "/apis/batch/v1/namespaces/batch/cronjobs/hourly-report", { spec: { suspend: true } }, { contentType: "application/merge-patch+json" });
      byJob.set("cron", await finished(tier, "batch", cronJob));

      const all = measurements(tier);
      for (const shape of [...shapes, { namespace: "batch", name: "cron", jobId: "hourly-report", runSeconds: 2 } as JobShape]) {
        const pods = byJob.get(shape.name)!;
        assertOncePerPod(tier, pods);
        for (const pod of pods) {
          const measured = all.find((entry) => entry.uid === pod.metadata.uid)!;
          const container = (pod.status.containerStatuses as any[]).find((status) => status.name === "worker");
          const exit = container.state.terminated.exitCode as number;
          assert.equal(measured.jobId, shape.jobId, `${pod.metadata.name}: app id`);
          assert.equal(measured.exitcode, exit, `${pod.metadata.name}: exit code`);
          // kwok ends the run after the time the pod asked; whole seconds, and a busy machine only makes it longer.
          assert.ok(measured.duration !== undefined && measured.duration >= shape.runSeconds - 1 && measured.duration <= shape.runSeconds + 60, `${pod.metadata.name}: ${measured.duration} s for a ${shape.runSeconds} s run`);
          assert.equal(measured.settings, pod.metadata.annotations["optune.ai/settings"], `${pod.metadata.name}: the settings it ran with`);
          assert.deepEqual(pod.spec.containers[0].resources.limits, { cpu: "750m", memory: "384Mi" }, `${pod.metadata.name}: Optune's ADJUST applied at admission`);
        }
      }
      assert.equal(byJob.get("indexed")!.length, 2);
      if (newest) {
        const retried = byJob.get("retried")!;
        assert.deepEqual(retried.map((pod) => pod.status.containerStatuses[0].state.terminated.exitCode).sort(), [0, 1], "the failed attempt and the retry, each reported");
        const sidecar = byJob.get("with-sidecar")![0];
        assert.equal(sidecar.status.initContainerStatuses[0].state.terminated.exitCode, 143, "kwok stopped the sidecar after the job container, as the kubelet does");
      }
      // Every event went through the real adapter: its headers, as it sends them.
      const delivery = tier.sink.deliveries.find((entry) => String(entry.headers["ce-subject"]).includes("/pods/"))!;
      assert.match(String(delivery.headers["ce-subject"]), /^\/apis\/v1\/namespaces\/(batch|etl)\/pods\//);
      assert.equal(delivery.headers["ce-source"], tier.server.url);
      assert.match(String(delivery.headers["ce-time"]), /\.\d+Z$/);
    });

    test("the webhook is called for job pods only: matchConditions, compiled by the real API server, keep the others away", async () => {
      const sum = async () => {
        const text = await tier.webhookMetrics();
        return [...text.matchAll(/^servo_k8s_multijob_admissions_total\{[^}]*\} (\d+)$/gm)].reduce((total, match) => total + Number(match[1]), 0);
      };
      const before = await sum();
      for (let index = 0; index < 3; index++) {
        const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: `no-app-id-${index}` }, spec: { nodeName: "no-such-node", containers: [{ name: "web", image: "registry.example.com/web:1", resources: SMALL }] } };
        assert.equal((await tier.server.request("POST", "/api/v1/namespaces/batch/pods", pod)).status, 201);
      }
      assert.equal(await sum(), before, "a pod without the app id reached the webhook");
      const jobPod = { apiVersion: "v1", kind: "Pod", metadata: { name: "with-app-id" }, spec: { nodeName: "no-such-node", restartPolicy: "Never", containers: [{ name: "worker", image: "registry.example.com/jobs/worker:1", env: [{ name: "JOBID", value: "resize-images" }], resources: SMALL }] } };
      assert.equal((await tier.server.request("POST", "/api/v1/namespaces/batch/pods", jobPod)).status, 201);
      assert.equal(await sum(), before + 1, "a job pod reaches the webhook");
      // Linkerd's injector (called before us) puts its proxy first: the job pod still reaches it.
      const meshed = { ...jobPod, metadata: { name: "with-app-id-meshed" }, spec: { ...jobPod.spec, containers: [{ name: "linkerd-proxy", image: "cr.l5d.io/linkerd/proxy:edge-25.1.1", resources: SMALL }, ...jobPod.spec.containers] } };
      assert.equal((await tier.server.request("POST", "/api/v1/namespaces/batch/pods", meshed)).status, 201);
      assert.equal(await sum(), before + 2, "a job pod with a mesh's proxy first reaches the webhook");
    });

    if (newest) test("a container restart rule (1.35+): the first run exits 42 and restarts in place; only the run that ends the job is reported", async () => {
      const shape: JobShape = {
        namespace: "batch",
        name: "restarted-in-place",
        jobId: "restarted-in-place",
        runSeconds: 2,
        annotations: { [`${RUN}first-exit-code`]: "42", [`${RUN}restart-in-place`]: "true" },
      };
      const spec = job(shape) as any;
      Object.assign(spec.spec.template.spec.containers[0], { restartPolicy: "Never", restartPolicyRules: [{ action: "Restart", exitCodes: { operator: "In", values: [42] } }] });
      const created = await tier.server.request("POST", "/apis/batch/v1/namespaces/batch/jobs?fieldValidation=Strict", spec);
      assert.equal(created.status, 201, JSON.stringify(created.body).slice(0, 400));
      const [pod] = await finished(tier, "batch", shape.name);
      assert.equal(pod.status.containerStatuses[0].restartCount, 1, "kwok restarted it in place, as the kubelet does");
      const mine = measurements(tier).filter((entry) => entry.uid === pod.metadata.uid);
      assert.equal(mine.length, 1);
      assert.equal(mine[0]!.exitcode, 0, "the run that ended the job, not the first attempt's 42");
      const body = bodyFor(tier, pod.metadata.uid);
      assert.equal(body.param.annotations.restarts, 1);
    });

    if (newest) test("an evicted attempt (DisruptionTarget) is reported marked, without perf; its replacement as an ordinary run", async () => {
      const shape: JobShape = {
        namespace: "etl",
        name: "evicted-once",
        jobId: "evicted-once",
        runSeconds: 20,
        spec: { backoffLimit: 1, podFailurePolicy: { rules: [{ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget" }] }] } },
      };
      assert.equal((await tier.server.request("POST", "/apis/batch/v1/namespaces/etl/jobs", job(shape))).status, 201);
      const first = await waitFor("the first pod running", async () => (await podsOf(tier, "etl", shape.name)).find((pod) => pod.status?.phase === "Running"));
      const evicted = await tier.server.request("POST", `/api/v1/namespaces/etl/pods/${first.metadata.name}/eviction`, { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: first.metadata.name, namespace: "etl" } });
      assert.equal(evicted.status, 201, JSON.stringify(evicted.body).slice(0, 300));
      // The replacement runs its 20 s; the evicted attempt is reported as soon as kwok killed it.
      const param = (await waitFor("the evicted attempt reported", async () => bodyFor(tier, first.metadata.uid))).param;
      assert.equal(param.annotations.disrupted, "EvictionByEvictionAPI");
      assert.equal(param.annotations.exitcode, 143);
      assert.deepEqual(Object.keys(param.metrics).sort(), ["duration"]);
      const pods = await finished(tier, "etl", shape.name, 180_000);
      const replacement = pods.find((pod) => pod.metadata.uid !== first.metadata.uid)!;
      const ordinary = bodyFor(tier, replacement.metadata.uid);
      assert.ok("perf" in ordinary.param.metrics && !("disrupted" in ordinary.param.annotations));
      assertOncePerPod(tier, [first, replacement].filter((pod) => pods.some((left) => left.metadata.uid === pod.metadata.uid)));
    });

    if (newest) test("in-place resize (1.35+): a refused one reports what ran and the ask beside it; a completed one the final size, marked", async () => {
      const run = async (name: string, resizeTo: string, kubelet: (pod: any) => { conditions?: object[]; resources?: object }) => {
        const shape: JobShape = { namespace: "etl", name, jobId: name, runSeconds: 20 };
        assert.equal((await tier.server.request("POST", "/apis/batch/v1/namespaces/etl/jobs", job(shape))).status, 201);
        const running = await waitFor(`${name} running`, async () => (await podsOf(tier, "etl", name)).find((pod) => pod.status?.containerStatuses?.[0]?.state?.running !== undefined));
        const asked = { limits: { cpu: resizeTo, memory: "384Mi" }, requests: { cpu: resizeTo, memory: "384Mi" } };
        const resize = await tier.server.request("PATCH", `/api/v1/namespaces/etl/pods/${running.metadata.name}/resize`, { spec: { containers: [{ name: "worker", resources: asked }] } }, { contentType: "application/strategic-merge-patch+json" });
        assert.equal(resize.status, 200, JSON.stringify(resize.body).slice(0, 300));
        // The kubelet's part, which kwok does not play: the condition, or the new size in the status.
        for (;;) {
          const pod = (await tier.server.request("GET", `/api/v1/namespaces/etl/pods/${running.metadata.name}`)).body;
          const { conditions, resources } = kubelet(pod);
          const statuses = resources === undefined ? undefined : pod.status.containerStatuses.map((status: any) => ({ ...status, resources }));
          const patch = { metadata: { resourceVersion: pod.metadata.resourceVersion }, status: { ...(conditions === undefined ? {} : { conditions }), ...(statuses === undefined ? {} : { containerStatuses: statuses }) } };
          const written = await tier.server.request("PATCH", `/api/v1/namespaces/etl/pods/${running.metadata.name}/status`, patch, { contentType: "application/strategic-merge-patch+json" });
          if (written.status === 200) break;
          assert.equal(written.status, 409, JSON.stringify(written.body).slice(0, 300)); // kwok wrote meanwhile: read again
        }
        const [pod] = await finished(tier, "etl", name);
        return bodyFor(tier, pod.metadata.uid);
      };
      const admitted = '{"limits":{"cpu":"750m","memory":"384Mi"},"requests":{"cpu":"750m","memory":"384Mi"}}';
      // In etl: no quota there for the test's ask to run into; the kubelet (the test) finds it infeasible.
      const infeasible = await run("resize-refused", "1500m", () => ({ conditions: [{ type: "PodResizePending", status: "True", reason: "Infeasible", message: "Node didn't have enough capacity" }] }));
      assert.equal(infeasible.param.annotations.resources, admitted, "what the container had");
      assert.equal(infeasible.param.annotations.resources_requested, '{"limits":{"cpu":"1500m","memory":"384Mi"},"requests":{"cpu":"1500m","memory":"384Mi"}}');
      assert.equal(infeasible.param.annotations.resize, "pending: Infeasible");
      assert.equal(infeasible.param.annotations.settings, '{"container":"worker","cpu":0.75,"mem":402653184}', "the settings are what ran: kept");
      const grown = { limits: { cpu: "1", memory: "384Mi" }, requests: { cpu: "1", memory: "384Mi" } };
      const completed = await run("resize-done", "1", () => ({ resources: grown }));
      assert.equal(completed.param.annotations.resources, JSON.stringify(grown));
      assert.equal(completed.param.annotations.resize, "during the run: the resources are the final ones");
      assert.equal(completed.param.annotations.settings, undefined);
      assert.match(completed.param.annotations.settings_dropped, /the settings say cpu 0\.75 for worker, its limit is 1/);
    });

    if (newest) test("pod-level resources (1.34+): the budget the pod ran under is reported", async () => {
      const shape: JobShape = { namespace: "etl", name: "pod-budget", jobId: "pod-budget", runSeconds: 1, podSpec: { resources: { limits: { cpu: "2", memory: "1Gi" }, requests: { cpu: "1", memory: "512Mi" } } } };
      assert.equal((await tier.server.request("POST", "/apis/batch/v1/namespaces/etl/jobs?fieldValidation=Strict", job(shape))).status, 201);
      const [pod] = await finished(tier, "etl", shape.name);
      const body = bodyFor(tier, pod.metadata.uid);
      assert.equal(body.param.annotations.pod_resources, '{"limits":{"cpu":"2","memory":"1Gi"},"requests":{"cpu":"1","memory":"512Mi"}}');
    });

    if (newest) test("a job pod with a native sidecar under a LimitRange of type Pod: Optune's ADJUST at the top of the range it was given is admitted", async () => {
      // The webhook DESCRIBEs the ranges the namespace admits; this Optune then asks for their top.
      const script = tier.receiver.respond;
      const state = new Map<string, { max?: number; step: number }>();
      tier.receiver.respond = (request) => {
        const { event, param } = request.body as { event?: string; param?: any };
        const app = request.path;
        const at = state.get(app) ?? { step: 0 };
        state.set(app, at);
        if (event === "DESCRIPTION") at.max = param.application.components.worker.settings.cpu.max;
        if (event !== "WHATS_NEXT") return { status: 200, body: "{}" };
        at.step++;
        if (at.step === 1) return { status: 200, body: JSON.stringify({ cmd: "DESCRIBE" }) };
        if (at.step === 2) return { status: 200, body: JSON.stringify({ cmd: "ADJUST", param: { state: { application: { components: { worker: { settings: { cpu: { value: at.max }, mem: { value: 268435456 } } } } } } } }) };
        return { status: 200, body: JSON.stringify({ cmd: "MEASURE" }) };
      };
      const perPod = await tier.server.request("POST", "/api/v1/namespaces/etl/limitranges", { apiVersion: "v1", kind: "LimitRange", metadata: { name: "per-pod" }, spec: { limits: [{ type: "Pod", max: { cpu: "2" } }] } });
      await webhookSees(tier.webhook, "etl", perPod.body.metadata);
      try {
        const shape: JobShape = {
          namespace: "etl",
          name: "bounded-sidecar",
          jobId: "bounded-sidecar",
          runSeconds: 1,
          podSpec: { initContainers: [{ name: "log-shipper", image: "registry.example.com/shipper:1", restartPolicy: "Always", resources: { limits: { cpu: "500m", memory: "64Mi" }, requests: { cpu: "500m", memory: "64Mi" } } }] },
        };
        assert.equal((await tier.server.request("POST", "/apis/batch/v1/namespaces/etl/jobs", job(shape))).status, 201);
        const [pod] = await finished(tier, "etl", shape.name);
        assert.equal(state.get("/metrics/acme/bounded-sidecar/servo")?.max, 1.5, "Optune was told: 2 for the pod, 0.5 of it the sidecar's");
        assert.equal(pod.spec.containers[0].resources.limits.cpu, "1500m", "the top of the range, admitted: the pod asks 2 with its sidecar");
        assertOncePerPod(tier, [pod]);
      } finally {
        tier.receiver.respond = script;
        await tier.server.request("DELETE", "/api/v1/namespaces/etl/limitranges/per-pod");
        await webhookSees(tier.webhook, "etl", { gone: "per-pod" });
      }
    });

    if (newest) test("a replica killed and restarted mid-run, and the API server restarted under the adapter: each job still reported once", async () => {
      const shapes: JobShape[] = [0, 1, 2, 3].map((index) => ({ namespace: WATCHED[index % 2]!, name: `survivor-${index}`, jobId: "resize-images", runSeconds: 4 + index }));
      for (const shape of shapes) assert.equal((await tier.server.request("POST", `/apis/batch/v1/namespaces/${shape.namespace}/jobs`, job(shape))).status, 201);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await tier.restartReplica(0);
      await tier.server.restart();
      // A finish whose event came while the API server was down (the claim fails, the adapter gives
      // up after ~3 s) waits for a sweep: the deployment's PingSource asks for one on its schedule.
      let pinged = 0;
      const pings = setInterval(() => void Promise.all(tier.replicas.map((replica) => replica.send(pingEvent(`survivor-ping-${++pinged}`)).catch(() => undefined))), 10_000);
      try {
        const pods = (await Promise.all(shapes.map((shape) => finished(tier, shape.namespace, shape.name, 180_000)))).flat();
        assertOncePerPod(tier, pods);
      } finally {
        clearInterval(pings);
      }
    });

    if (newest) test("jobs that finish while no adapter runs are never sent by it: the sweep reports them", async () => {
      await tier.stopAdapters();
      const shapes: JobShape[] = [0, 1].map((index) => ({ namespace: WATCHED[index]!, name: `unseen-${index}`, jobId: "nightly-etl", runSeconds: 1 }));
      for (const shape of shapes) assert.equal((await tier.server.request("POST", `/apis/batch/v1/namespaces/${shape.namespace}/jobs`, job(shape))).status, 201);
      const pods: any[] = [];
      for (const shape of shapes) {
        pods.push(
          ...(await waitFor(`${shape.name} complete`, async () => {
            const status = (await tier.server.request("GET", `/apis/batch/v1/namespaces/${shape.namespace}/jobs/${shape.name}`)).body.status ?? {};
            return status.succeeded === 1 ? podsOf(tier, shape.namespace, shape.name) : undefined;
          })),
        );
      }
      await tier.startAdapters();
      // The adapter sends nothing for them: it never will.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const uids = new Set(pods.map((pod) => pod.metadata.uid));
      assert.equal(measurements(tier).filter((measured) => uids.has(measured.uid)).length, 0, "the adapter sent pods that finished before it started");
      const swept = await runCli(["sweep"], { ...tier.functionEnv, OPTUNE_URL: tier.receiver.template, OPTUNE_SWEEP_MAX_AGE: "3600" });
      assert.equal(swept.code, 0, swept.stderr);
      assertOncePerPod(tier, pods);
    });

    if (newest) test("the adapter in Reference mode (Knative's default): the function reads each pod it is told of, and reports each job once", async () => {
      await tier.stopAdapters();
      await tier.startAdapters("Reference");
      try {
        const shapes: JobShape[] = [0, 1].map((index) => ({ namespace: WATCHED[index]!, name: `by-reference-${index}`, jobId: "nightly-etl", runSeconds: 2 }));
        for (const shape of shapes) assert.equal((await tier.server.request("POST", `/apis/batch/v1/namespaces/${shape.namespace}/jobs`, job(shape))).status, 201);
        const pods = (await Promise.all(shapes.map((shape) => finished(tier, shape.namespace, shape.name)))).flat();
        assertOncePerPod(tier, pods);
        const reference = tier.sink.deliveries.find((delivery) => String(delivery.headers["ce-type"]).startsWith("dev.knative.apiserver.ref."));
        assert.ok(reference !== undefined, "the adapter sent Reference events");
        assert.deepEqual(Object.keys(JSON.parse(reference.body)).sort(), ["apiVersion", "kind", "name", "namespace"]);
      } finally {
        await tier.stopAdapters();
        await tier.startAdapters();
      }
    });

    if (newest) test("Optune answering 503 within the adapter's retry window: the retried event is reported once", async () => {
      const script = tier.receiver.respond;
      let refused = 0;
      tier.receiver.respond = (request) => ((request.body as { event?: string }).event === "MEASUREMENT" && refused < 2 ? (refused++, { status: 503, headers: { "retry-after": "1" }, body: "{}" }) : script(request));
      try {
        const shape: JobShape = { namespace: "batch", name: "optune-blinked", jobId: "resize-images", runSeconds: 1 };
        assert.equal((await tier.server.request("POST", `/apis/batch/v1/namespaces/batch/jobs`, job(shape))).status, 201);
        const pods = await finished(tier, "batch", shape.name);
        assertOncePerPod(tier, pods);
        assert.ok(refused >= 1, "Optune refused at least once");
      } finally {
        tier.receiver.respond = script;
      }
    });
  });
}
