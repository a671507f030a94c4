// The function and the webhook against a real kube-apiserver (with etcd, no controllers: the test
// plays the kubelet by writing pods/status): the RBAC `manifests` writes, applied for real; the
// function running with a token of its generated ServiceAccount; the API server's own watch relayed
// to replicas with duplicates to different replicas and a replica restarted (a fault Knative's
// adapter does not make; jobs.test.ts runs the adapter itself); claims with real
// resourceVersion conflicts; the sweep's paged LIST; Reference mode; TokenReview; and the webhook
// registered with the API server and called by it over TLS. Nothing stubbed in between.
// `npm run test:cluster`; skipped (and failing in CI, REQUIRE_CLUSTER=1) without the components.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startWebhook, type RunningWebhook } from "../../handler/adjust/webhook.js";
import { loadConfig } from "../../handler/edges/config.js";
import { manifests, type ManifestOptions, type Release } from "../../handler/deploy/manifests.js";
import { TEST_OPTIONS } from "../support/manifest-variants.js";
import { connectKubernetes } from "../../handler/edges/kubernetes.js";
import { sweep } from "../../handler/measure/sweep.js";
import { startReceiver, type Receiver } from "../../handler/demo/optune-stand-in.js";
import { atCreate, makeCertificate } from "../support/admission.js";
import { seedPods } from "../support/mutations.js";
import { deliverLikeTheAdapter, seededRandom } from "../support/cluster.js";
import { runCli } from "../support/cli.js";
import { startStack, type Stack } from "../support/stack.js";
import { createAll, startRealApiServer, type Document, type RealApiServer } from "./apiserver.js";
import { skipUnlessInstalled } from "./components.js";
import { webhookSees } from "./tier.js";
import { applyCrds } from "./crds.js";
import { scratchDir } from "../support/scratch.js";

const skip = skipUnlessInstalled();

const WATCHED = ["batch", "etl"];
const OPTIONS: ManifestOptions & Release = { ...TEST_OPTIONS, watch: WATCHED, account: "acme", eventAuth: true, webhook: true };
const AUDIENCE = "serving.knative.dev/service/optune-servo/servo-k8s-multijob";
const FUNCTION_SA = { namespace: "optune-servo", name: "servo-k8s-multijob" };

/** A Job's pod as the Job controller creates it: generateName, the app id, a finalizer-free spec the API server validates. */
function jobPod(namespace: string, name: string, jobId = "resize-images", resources: object = { limits: { cpu: "500m", memory: "256Mi" }, requests: { cpu: "500m", memory: "256Mi" } }): object {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { "batch.kubernetes.io/job-name": jobId } },
    spec: { restartPolicy: "Never", containers: [{ name: "worker", image: "registry.example.com/jobs/worker:1", env: [{ name: "JOBID", value: jobId }], resources }] },
  };
}

/** The kubelet's part: the job container ran from `started` to `finished` and exited. */
function terminated(exitCode = 0, started = "2026-12-01T10:00:00Z", finished = "2026-12-01T10:00:42Z"): object {
  return {
    status: {
      phase: exitCode === 0 ? "Succeeded" : "Failed",
      containerStatuses: [{ name: "worker", ready: false, restartCount: 0, image: "registry.example.com/jobs/worker:1", imageID: "", state: { terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", startedAt: started, finishedAt: finished } } }],
    },
  };
}

const MERGE = { contentType: "application/merge-patch+json" };

describe("against a real kube-apiserver", { skip }, () => {
  let server: RealApiServer;
  let receiver: Receiver;
  let functionKubeconfig: string;

  before(async () => {
    server = await startRealApiServer();
    receiver = await startReceiver();
    await applyCrds(server);
    for (const namespace of WATCHED) await server.createNamespace(namespace);
    // What `manifests` writes, applied as kubectl would, with strict field validation against the real CRDs.
    assert.deepEqual(await createAll(server, manifests(OPTIONS).map(({ manifest }) => manifest as unknown as Document)), []);
    functionKubeconfig = server.kubeconfig(await server.serviceAccountToken(FUNCTION_SA.namespace, FUNCTION_SA.name), "function");
  });
  after(async () => {
    await receiver?.close();
    await server?.stop();
  });

  test("the RBAC manifests writes gives each identity exactly what it needs, as the API server decides", async () => {
    const may = async (token: string, namespace: string, verb: string, resource = "pods", group = "") => {
      const answer = await server.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview", spec: { resourceAttributes: { namespace, verb, resource, group } } }, { token });
      return answer.body.status.allowed === true;
    };
    const fn = await server.serviceAccountToken(FUNCTION_SA.namespace, FUNCTION_SA.name);
    for (const namespace of WATCHED) {
      const source = await server.serviceAccountToken(namespace, "servo-k8s-multijob-source");
      for (const verb of ["get", "list", "patch"]) assert.ok(await may(fn, namespace, verb), `the function may ${verb} pods in ${namespace}`);
      for (const verb of ["watch", "create", "delete", "update"]) assert.ok(!(await may(fn, namespace, verb)), `the function may not ${verb} pods in ${namespace}`);
      for (const verb of ["get", "list", "watch"]) assert.ok(await may(source, namespace, verb), `the source may ${verb} pods in ${namespace}`);
      for (const verb of ["patch", "delete"]) assert.ok(!(await may(source, namespace, verb)), `the source may not ${verb} pods in ${namespace}`);
      assert.ok(!(await may(fn, namespace, "get", "secrets")), "the function may not read secrets");
    }
    for (const verb of ["get", "list", "patch"]) assert.ok(!(await may(fn, "default", verb)), `nothing outside --watch: ${verb} in default`);
    assert.ok(await may(fn, "", "create", "tokenreviews", "authentication.k8s.io"), "--event-auth grants create tokenreviews");
  });

  test("three replicas fed by the real watch, with duplicates and a replica restarted mid-run: exactly one MEASUREMENT per job", async () => {
    const env = { POD_NAMESPACES: WATCHED.join(","), OPTUNE_ACCOUNT: "acme", KUBECONFIG: functionKubeconfig, OPTUNE_DEDUPE: "annotation", LOG_LEVEL: "warn" };
    const replicas: Stack[] = await Promise.all([0, 1, 2].map(() => startStack(env, { receiver })));
    receiver.requests.length = 0;
    const random = seededRandom(20261201);
    const deliveries: Array<Promise<{ status: number }>> = [];
    const answered: number[] = [];
    let duplicates = 0;
    // Each change goes to a replica the way Knative's sender delivers it, with its retries (and its
    // real backoff): an event that reaches the replica being restarted is retried, maybe elsewhere.
    const relay = (type: string, pod: any) => {
      const action = type === "ADDED" ? "add" : type === "DELETED" ? "delete" : "update";
      const event = { specversion: "1.0", id: `${pod.metadata.uid}-${pod.metadata.resourceVersion}`, source: server.url, type: `dev.knative.apiserver.resource.${action}`, datacontenttype: "application/json", data: pod };
      const times = random() < 0.3 ? 2 : 1;
      if (times === 2) duplicates++;
      for (let copy = 0; copy < times; copy++) {
        deliveries.push(deliverLikeTheAdapter(event, () => replicas.map((replica) => replica.fn.url), random, { firstWaitMs: 100 }));
      }
    };
    const stops = await Promise.all(WATCHED.map((namespace) => server.watchPods(namespace, relay)));
    try {
      const names: string[] = [];
      for (let index = 0; index < 8; index++) {
        const namespace = WATCHED[index % 2]!;
        const name = `job-${index}`;
        names.push(`${namespace}/${name}`);
        assert.equal((await server.request("POST", `/api/v1/namespaces/${namespace}/pods`, jobPod(namespace, name))).status, 201);
        if (index === 4) {
          // A replica restarted mid-run: a new instance, with no memory of what the old one did.
          await replicas[0]!.close();
          replicas[0] = await startStack(env, { receiver });
        }
        assert.equal((await server.request("PATCH", `/api/v1/namespaces/${namespace}/pods/${name}/status`, terminated(index % 3 === 0 ? 1 : 0), MERGE)).status, 200);
      }
      // Wait until the claims' own writes have come back through the watch and been answered.
      for (let round = 0; round < 50; round++) {
        answered.push(...(await Promise.all(deliveries.splice(0))).map(({ status }) => status));
        await new Promise((resolve) => setTimeout(resolve, 100));
        if (deliveries.length === 0) break;
      }
      const measurements = receiver.requests.filter((request) => !request.path.includes("_global_"));
      const keys = measurements.map((request) => request.headers["idempotency-key"]);
      assert.equal(new Set(keys).size, keys.length, "a job was reported twice");
      assert.equal(measurements.length, names.length, `one MEASUREMENT per job, got ${measurements.length}`);
      for (const ref of names) {
        const [namespace, name] = ref.split("/");
        const pod = (await server.request("GET", `/api/v1/namespaces/${namespace}/pods/${name}`)).body;
        assert.equal(JSON.parse(pod.metadata.annotations["optune.ai/measurement"]).state, "sent", ref);
      }
      assert.ok(duplicates > 0, "the relay sent duplicates");
      assert.deepEqual(answered.filter((status) => status !== 200), [], "every delivery answered 200 in the end");
    } finally {
      for (const stop of stops) stop();
      await Promise.all(replicas.map((replica) => replica.close()));
    }
  });

  test("the sweep's paged LIST over a relay gap, through the function's own token: every finished job found, page by page", async () => {
    for (let index = 0; index < 5; index++) {
      await server.request("POST", "/api/v1/namespaces/etl/pods", jobPod("etl", `gap-${index}`, "nightly-etl"));
      await server.request("PATCH", `/api/v1/namespaces/etl/pods/gap-${index}/status`, terminated(0, new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, "Z"), new Date().toISOString().replace(/\.\d+Z$/, "Z")), MERGE);
    }
    const api = connectKubernetes({ kind: "files", paths: [functionKubeconfig] }, { timeoutMs: 5000 });
    const seen: string[] = [];
    const summary = await sweep({ api, namespaces: ["etl"], pageSize: 2, now: Date.now, maxAgeMs: 3600_000, report: async (pod) => (seen.push(String(pod.metadata?.name)), { kind: "ignored", code: "not-finished", reason: "" }) });
    assert.ok(seen.filter((name) => name.startsWith("gap-")).length === 5, JSON.stringify(seen));
    assert.equal(summary.tooOld + summary.ignored, summary.scanned);
  });

  test("Reference mode and claims read and write the real pod; `sweep` and `invoke --cluster` work with a kubeconfig", async () => {
    await server.request("POST", "/api/v1/namespaces/batch/pods", jobPod("batch", "by-reference"));
    await server.request("PATCH", "/api/v1/namespaces/batch/pods/by-reference/status", terminated(), MERGE);
    const stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", KUBECONFIG: functionKubeconfig, OPTUNE_DEDUPE: "annotation", LOG_LEVEL: "warn" }, { receiver });
    try {
      const reference = { specversion: "1.0", id: "ref-1", source: server.url, type: "dev.knative.apiserver.ref.update", datacontenttype: "application/json", data: { apiVersion: "v1", kind: "Pod", name: "by-reference", namespace: "batch" } };
      const answer = (await (await stack.send(reference)).json()) as { outcome: string; runSeconds?: number };
      assert.deepEqual([answer.outcome, answer.runSeconds], ["sent", 42]);
      const again = (await (await stack.send({ ...reference, id: "ref-2" })).json()) as { outcome: string };
      assert.equal(again.outcome, "already-reported");
    } finally {
      await stack.close();
    }
    const env = { POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", OPTUNE_URL: receiver.template, KUBECONFIG: functionKubeconfig, OPTUNE_SWEEP_MAX_AGE: "2592000" };
    // `invoke --cluster --send` claims against the real pod, as the function does.
    await server.request("POST", "/api/v1/namespaces/batch/pods", jobPod("batch", "invoked"));
    const invoked = (await server.request("PATCH", "/api/v1/namespaces/batch/pods/invoked/status", terminated(), MERGE)).body;
    const dir = scratchDir("real-invoke-");
    writeFileSync(join(dir, "pod.json"), JSON.stringify(invoked));
    const invoke = await runCli(["invoke", "--cluster", "--send", join(dir, "pod.json")], env);
    assert.equal(invoke.code, 0, invoke.stderr);
    const claimed = (await server.request("GET", "/api/v1/namespaces/batch/pods/invoked")).body;
    assert.equal(JSON.parse(claimed.metadata.annotations["optune.ai/measurement"]).state, "sent");
    // `sweep` lists the namespace with the function's token: everything there is reported already or not a finished job.
    const swept = await runCli(["sweep"], env);
    assert.equal(swept.code, 0, swept.stderr);
    assert.match(swept.stderr, /swept/);
  });

  test("event authentication with real service-account tokens: the source's OIDC identity with the audience is accepted; another pod's token for the audience, or the source's for another, is 401", async () => {
    // The OIDC service accounts Knative makes for the generated sources, as manifests lists them.
    const senders = manifests(OPTIONS)
      .flatMap(({ manifest }) => ((manifest.spec as any)?.template?.spec?.containers?.[0]?.env ?? []) as Array<{ name: string; value?: string }>)
      .find((entry) => entry.name === "OPTUNE_EVENT_SENDERS")!
      .value!.split(",");
    const batchSource = senders.find((user) => user.startsWith("system:serviceaccount:batch:"))!.split(":")[3]!;
    await server.request("POST", "/api/v1/namespaces/batch/serviceaccounts", { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: batchSource } });
    const source = await server.serviceAccountToken("batch", batchSource, [AUDIENCE], 600);
    const elsewhere = await server.serviceAccountToken("batch", batchSource, ["somewhere-else"], 600);
    const anyPod = await server.serviceAccountToken("batch", "default", [AUDIENCE], 600);
    const stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", KUBECONFIG: functionKubeconfig, OPTUNE_DEDUPE: "annotation", OPTUNE_EVENT_AUDIENCE: AUDIENCE, OPTUNE_EVENT_SENDERS: senders.join(","), LOG_LEVEL: "warn" }, { receiver });
    try {
      const event = JSON.stringify({ specversion: "1.0", id: "auth-1", source: server.url, type: "dev.knative.sources.ping", datacontenttype: "application/json", data: {} });
      const post = (token?: string) => stack.post(event, { "content-type": "application/cloudevents+json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) });
      // First, so that its refusal is the line written (refusals are then summed up, not each logged).
      assert.equal((await post(anyPod)).status, 401, "a token any pod can mount, for the right audience");
      assert.ok(stack.logText().includes("system:serviceaccount:batch:default is not one of the senders"), stack.logText().slice(-600));
      assert.equal((await post(elsewhere)).status, 401);
      assert.equal((await post()).status, 401);
      assert.equal((await post(source)).status, 200);
      assert.ok(!stack.logText().includes(source) && !stack.logText().includes(elsewhere) && !stack.logText().includes(anyPod), "a token in the log");
    } finally {
      await stack.close();
    }
  });

  describe("the webhook, registered with the API server", () => {
    let webhook: RunningWebhook;
    let ca: string;
    /** Optune, scripted: each admission's first WHATS_NEXT gets this ADJUST, the next one MEASURE. */
    const adjustTo = (cpu: number, mem: number) => {
      let asked = 0;
      receiver.respond = (request) => {
        const { event } = request.body as { event?: string };
        if (event !== "WHATS_NEXT") return { status: 200, body: "{}" };
        return { status: 200, body: JSON.stringify(++asked % 2 === 1 ? { cmd: "ADJUST", param: { state: { application: { components: { worker: { settings: { cpu: { value: cpu }, mem: { value: mem } } } } } } } } : { cmd: "MEASURE" }) };
      };
    };
    const register = async (url: string) => {
      const configuration = manifests(OPTIONS).map((documented) => documented.manifest).find((manifest) => manifest.kind === "MutatingWebhookConfiguration")!;
      const hooks = (configuration.webhooks as Array<Record<string, unknown>>).map((hook) => ({ ...hook, clientConfig: { url, caBundle: Buffer.from(ca).toString("base64") } }));
      await server.request("DELETE", `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${configuration.metadata.name}`);
      const answer = await server.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", { ...configuration, webhooks: hooks });
      assert.equal(answer.status, 201, JSON.stringify(answer.body).slice(0, 300));
      // The API server picks up a new configuration within about a second; wait until it is in force.
      await new Promise((resolve) => setTimeout(resolve, 2000));
    };
    before(async () => {
      const dir = scratchDir("real-webhook-");
      const pair = await makeCertificate("127.0.0.1");
      ca = pair.cert;
      writeFileSync(join(dir, "tls.crt"), pair.cert);
      writeFileSync(join(dir, "tls.key"), pair.key);
      // As in its pod: the webhook's own ServiceAccount, with the Roles `manifests --webhook` writes.
      const token = await server.serviceAccountToken(FUNCTION_SA.namespace, "servo-k8s-multijob-webhook");
      const config = loadConfig({ POD_NAMESPACES: WATCHED.join(","), OPTUNE_ACCOUNT: "acme", OPTUNE_URL: receiver.template, OPTUNE_DEDUPE: "memory", KUBECONFIG: server.kubeconfig(token, "webhook"), WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"), WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key"), WEBHOOK_SHUTDOWN_DELAY: "0", LOG_LEVEL: process.env.DEBUG_WEBHOOK ? "debug" : "warn" });
      webhook = await startWebhook(config, { print: () => {}, logLine: (line) => process.env.DEBUG_WEBHOOK && process.stderr.write(line) });
      await register(webhook.url);
    });
    after(async () => {
      await webhook?.stop("test over");
      receiver.respond = () => ({ status: 200, body: "{}" });
    });

    test("pods created through the API server are adjusted, and every contract pod in CREATE form passes its validation", async () => {
      adjustTo(1.5, 536870912);
      const created = await server.request("POST", "/api/v1/namespaces/batch/pods", jobPod("batch", "tuned"));
      assert.equal(created.status, 201, JSON.stringify(created.body).slice(0, 300));
      assert.deepEqual(created.body.spec.containers[0].resources, { limits: { cpu: "1500m", memory: "512Mi" }, requests: { cpu: "1500m", memory: "512Mi" } });
      assert.equal(created.body.metadata.annotations["optune.ai/settings"], '{"container":"worker","cpu":1.5,"mem":536870912}');

      let index = 0;
      for (const seed of seedPods()) {
        const pod = atCreate(seed) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
        delete pod.metadata.ownerReferences;
        delete pod.metadata.finalizers;
        pod.metadata.namespace = "batch";
        pod.metadata.generateName = `contract-${index++}-`;
        const answer = await server.request("POST", "/api/v1/namespaces/batch/pods", pod);
        assert.equal(answer.status, 201, `${String(seed.metadata && (seed.metadata as { name?: string }).name)}: ${JSON.stringify(answer.body).slice(0, 400)}`);
      }
    });

    test("a LimitRange whose max is below Optune's setting, and a ResourceQuota nearly used up, never make the webhook block a pod", async () => {
      const described = () => {
        const description = receiver.requests.filter((request) => (request.body as { event?: string }).event === "DESCRIPTION").at(-1);
        const settings = (description?.body as any)?.param.application.components.worker.settings;
        return [settings?.cpu.max, settings?.mem.max];
      };
      receiver.requests.length = 0;
      adjustTo(3.5, 1073741824);
      // DESCRIBE first, so the test sees the ranges Optune was given.
      const script = receiver.respond;
      let first = true;
      receiver.respond = (request) => ((request.body as { event?: string }).event === "WHATS_NEXT" && first ? ((first = false), { status: 200, body: '{"cmd":"DESCRIBE"}' }) : script(request));
      const small = await server.request("POST", "/api/v1/namespaces/etl/limitranges", { apiVersion: "v1", kind: "LimitRange", metadata: { name: "small" }, spec: { limits: [{ type: "Container", max: { cpu: "1", memory: "512Mi" } }] } });
      await webhookSees(webhook, "etl", small.body.metadata);
      const limited = await server.request("POST", "/api/v1/namespaces/etl/pods", jobPod("etl", "limited"));
      assert.equal(limited.status, 201, JSON.stringify(limited.body).slice(0, 300));
      assert.deepEqual(described(), [1, 536870912], "Optune is told the namespace's limits");
      assert.deepEqual(limited.body.spec.containers[0].resources.limits, { cpu: "500m", memory: "256Mi" }, "an ADJUST above them is refused, the pod runs as written");
      await server.request("DELETE", "/api/v1/namespaces/etl/limitranges/small");
      await webhookSees(webhook, "etl", { gone: "small" });

      // The quota controller's part (there is no controller manager): what is used so far.
      await server.request("POST", "/api/v1/namespaces/batch/resourcequotas", { apiVersion: "v1", kind: "ResourceQuota", metadata: { name: "nearly-full" }, spec: { hard: { "requests.cpu": "2", "limits.cpu": "2" } } });
      const status = { hard: { "requests.cpu": "2", "limits.cpu": "2" }, used: { "requests.cpu": "1200m", "limits.cpu": "1200m" } };
      const used = await server.request("PATCH", "/api/v1/namespaces/batch/resourcequotas/nearly-full/status", { status }, MERGE);
      assert.equal(used.status, 200);
      await webhookSees(webhook, "batch", used.body.metadata);
      receiver.requests.length = 0;
      adjustTo(0.8, 536870912);
      const quota = await server.request("POST", "/api/v1/namespaces/batch/pods", jobPod("batch", "within-quota"));
      assert.equal(quota.status, 201, JSON.stringify(quota.body).slice(0, 300));
      assert.equal(quota.body.spec.containers[0].resources.limits.cpu, "800m", "a setting within the quota's headroom (0.8 of 2 - 1.2) is applied");
      // Admitting it added its 0.8 to used; back to 1.2 used, as before it: 0.5 as written fits, 3.5 would not.
      const usedAgain = await server.request("PATCH", "/api/v1/namespaces/batch/resourcequotas/nearly-full/status", { status }, MERGE);
      assert.equal(usedAgain.status, 200);
      await webhookSees(webhook, "batch", usedAgain.body.metadata);
      adjustTo(3.5, 536870912);
      const over = await server.request("POST", "/api/v1/namespaces/batch/pods", jobPod("batch", "beyond-quota"));
      assert.equal(over.status, 201, JSON.stringify(over.body).slice(0, 300));
      assert.equal(over.body.spec.containers[0].resources.limits.cpu, "500m");
      await server.request("DELETE", "/api/v1/namespaces/batch/resourcequotas/nearly-full");
      await webhookSees(webhook, "batch", { gone: "nearly-full" });
    });

    test("with the webhook down, pods are still created (failurePolicy Ignore)", async () => {
      await register("https://127.0.0.1:9/mutate");
      const answer = await server.request("POST", "/api/v1/namespaces/batch/pods", jobPod("batch", "webhook-down"));
      assert.equal(answer.status, 201);
      assert.deepEqual(answer.body.spec.containers[0].resources.limits, { cpu: "500m", memory: "256Mi" });
      await register(webhook.url);
    });
  });
});
