// Monitoring that works where it is deployed: the rules linted and unit-tested with promtool, the
// PodMonitor matched against the pod Knative Serving really makes of our Service, and a real
// Prometheus scraping a running function and webhook, with every recording rule and every
// dashboard query returning data.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import https from "node:https";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { startWebhook, type RunningWebhook } from "../../handler/adjust/webhook.js";
import { findPrometheus, startPrometheus, type RunningPrometheus } from "../../handler/demo/cadvisor-stand-in.js";
import { loadConfig } from "../../handler/edges/config.js";
import { manifests, type Manifest } from "../../handler/deploy/manifests.js";
import { TEST_OPTIONS } from "../support/manifest-variants.js";
import { DASHBOARD_PANELS, RECORDING_RULES } from "../../handler/deploy/monitoring.js";
import { admissionReview, atCreate, makeCertificate } from "../support/admission.js";
import { REPOSITORY } from "../support/cli.js";
import { monitoringFiles } from "../support/examples.js";
import { startFakeApiServer, type FakeApiServer } from "../support/fake-apiserver.js";
import { jobPod } from "../support/pods.js";
import { podEvent, startStack, type Stack } from "../support/stack.js";
import { scratchDir } from "../support/scratch.js";

const run = promisify(execFile);
const PROMETHEUS = findPrometheus();
const PROMTOOL = PROMETHEUS === undefined ? undefined : join(PROMETHEUS, "..", "promtool");
const missing = PROMETHEUS === undefined ? "prometheus and promtool not found on PATH: run test/cluster/install.sh (Debian's prometheus package)" : undefined;
if (missing !== undefined && process.env.REQUIRE_CLUSTER === "1") throw new Error(`REQUIRE_CLUSTER=1, but ${missing}`);
const skip = missing === undefined ? false : `the monitoring tier: ${missing}`;
const MONITORING = join(REPOSITORY, "example/monitoring");

describe("the rules, with promtool", { skip }, () => {
  test("example/monitoring/ is what the generator makes", async () => {
    for (const [file, text] of Object.entries(await monitoringFiles())) assert.equal(readFileSync(join(REPOSITORY, file), "utf8"), text, `${file} is stale: npm run examples`);
  });

  test("promtool check rules: the rules file and the PrometheusRule of manifests --prometheus-rules", async () => {
    const dir = scratchDir("servo-rules-");
    try {
      const rule = manifests({ ...TEST_OPTIONS, watch: ["batch", "etl"], prometheusRules: true }).map((documented) => documented.manifest).find((manifest) => manifest.kind === "PrometheusRule")!;
      writeFileSync(join(dir, "operator.yml"), stringify(rule.spec));
      const { stdout } = await run(PROMTOOL!, ["check", "rules", join(MONITORING, "rules.yml"), join(dir, "operator.yml")]);
      assert.match(stdout, /SUCCESS: 13 rules found[\s\S]*SUCCESS: 13 rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("promtool test rules: every alert fires when it should, and stays quiet scaled to zero, on OpenFaaS and with only the webhook", async () => {
    const { stdout } = await run(PROMTOOL!, ["test", "rules", "rules.test.yml"], { cwd: MONITORING });
    assert.match(stdout, /SUCCESS/);
  });
});

describe("the PodMonitor against the pod Knative makes of our Service", () => {
  // What knative/serving's revision reconciler (pkg/reconciler/revision/resources/deploy.go and
  // queue.go) makes of a Service template: the user container's port renamed user-port with the
  // user's containerPort, queue-proxy beside it with its own ports, the template's annotations on
  // the pod, and the serving.knative.dev labels.
  const renderKnativePod = (service: Manifest) => {
    const template = (service.spec as { template: { metadata: { annotations: Record<string, string> }; spec: { containers: Array<{ name: string; ports?: Array<{ containerPort: number }> }> } } }).template;
    const user = template.spec.containers[0]!;
    return {
      metadata: {
        labels: { app: `${service.metadata.name}-00001`, "serving.knative.dev/service": service.metadata.name, "serving.knative.dev/configuration": service.metadata.name, "serving.knative.dev/revision": `${service.metadata.name}-00001` },
        annotations: template.metadata.annotations,
      },
      spec: {
        containers: [
          { name: "queue-proxy", ports: [{ name: "http-queueadm", containerPort: 8022 }, { name: "http-autometric", containerPort: 9090 }, { name: "http-usermetric", containerPort: 9091 }, { name: "queue-port", containerPort: 8012 }] },
          { name: user.name, ports: [{ name: "user-port", containerPort: user.ports?.[0]?.containerPort ?? 8080 }] },
        ],
      },
    };
  };

  test("its selector matches the pod, its port is the user container's, never queue-proxy's, and the prometheus.io annotations name the same port", () => {
    const documents = manifests({ ...TEST_OPTIONS, podMonitor: true }).map((documented) => documented.manifest);
    const pod = renderKnativePod(documents.find((manifest) => manifest.kind === "Service" && manifest.apiVersion === "serving.knative.dev/v1")!);
    const monitor = documents.find((manifest) => manifest.kind === "PodMonitor" && manifest.metadata.name === "servo-k8s-multijob")!;
    const spec = monitor.spec as { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: Array<{ port: string; path: string }> };
    for (const [label, value] of Object.entries(spec.selector.matchLabels)) assert.equal((pod.metadata.labels as Record<string, string>)[label], value, label);
    const port = spec.podMetricsEndpoints[0]!.port;
    const owner = pod.spec.containers.find((container) => container.ports.some((candidate) => candidate.name === port));
    assert.equal(owner?.name, "function", `port ${port} is not the function's`);
    assert.equal(pod.metadata.annotations["prometheus.io/port"], String(owner!.ports[0]!.containerPort));
  });
});

describe("a real Prometheus scraping a running function and webhook", { skip }, () => {
  let api: FakeApiServer;
  let stack: Stack;
  let webhook: RunningWebhook;
  let prometheus: RunningPrometheus;
  let url: string;
  let dir: string;
  let ca: string;

  before(async () => {
    dir = scratchDir("servo-monitoring-");
    api = await startFakeApiServer();
    stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", KUBECONFIG: api.kubeconfig, OPTUNE_DEDUPE: "annotation", LOG_LEVEL: "error", OPTUNE_SWEEP_MAX_AGE: "2592000" });
    const pair = await makeCertificate("127.0.0.1");
    ca = pair.cert;
    writeFileSync(join(dir, "tls.crt"), pair.cert);
    writeFileSync(join(dir, "tls.key"), pair.key);
    const config = loadConfig({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", OPTUNE_URL: stack.receiver.template, OPTUNE_DEDUPE: "memory", WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"), WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key"), WEBHOOK_SHUTDOWN_DELAY: "0", LOG_LEVEL: "error" });
    webhook = await startWebhook(config, { print: () => {}, logLine: () => {} });
    const target = (job: string, address: string, scheme = "http") =>
      `  - job_name: ${job}\n    scheme: ${scheme}\n    tls_config:\n      insecure_skip_verify: true\n    static_configs:\n      - targets: ["${address}"]\n        labels:\n          namespace: optune-servo\n          pod: ${job.split("/")[1]}-0\n`;
    prometheus = await startPrometheus(PROMETHEUS!, `${target("optune-servo/servo-k8s-multijob", `127.0.0.1:${stack.fn.port}`)}${target("optune-servo/servo-k8s-multijob-webhook", `127.0.0.1:${webhook.port}`, "https")}`, [join(MONITORING, "rules.yml")]);
    url = prometheus.url;
  });
  after(async () => {
    await prometheus?.stop();
    await webhook?.stop("test over");
    await stack?.close();
    await api?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const query = async (expr: string) => {
    const answer = (await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr.replaceAll("$namespace", ".*").replaceAll("$job", ".*"))}`)).json()) as { status: string; data?: { result: unknown[] } };
    return answer.status === "success" ? (answer.data?.result.length ?? 0) : -1;
  };
  const admit = () =>
    new Promise<void>((resolve, reject) => {
      const request = https.request(webhook.url, { method: "POST", ca, headers: { "content-type": "application/json" } }, (response) => {
        response.resume();
        response.on("end", () => resolve());
      });
      request.on("error", reject);
      request.end(JSON.stringify(admissionReview(atCreate(jobPod()))));
    });

  test("every recording rule and every dashboard query returns data", async () => {
    const queries = [...RECORDING_RULES.map((rule) => rule.record!), ...DASHBOARD_PANELS.flatMap((panel) => panel.queries)];
    let empty: string[] = queries;
    const deadline = Date.now() + 60_000;
    for (let round = 0; empty.length > 0 && Date.now() < deadline; round++) {
      // Work for the function and the webhook while Prometheus watches: finished jobs (claims, MEASUREMENTs to the stand-in, run times), a sweep, admissions.
      const recently = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000).toISOString().replace(".000Z", "Z");
      const pod = api.create(jobPod({ name: `watched-${round}`, uid: `uid-watched-${round}`, startedAt: recently, finishedAt: recently }));
      await stack.send(podEvent(pod));
      if (round % 5 === 0) await stack.send({ specversion: "1.0", id: `ping-${round}`, source: "ping", type: "dev.knative.sources.ping", data: {} });
      await admit();
      await new Promise((resolve) => setTimeout(resolve, 500));
      const counts = await Promise.all(queries.map(query));
      empty = queries.filter((_, index) => counts[index]! <= 0);
    }
    assert.deepEqual(empty, [], "queries without data");
  });
});
