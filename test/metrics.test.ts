// GET /metrics: the Prometheus text format (read back with a maintained parser, not a regex), counts
// that move as events, deliveries, dry runs, failures and admissions happen, label sets that stay
// small whatever the app ids, and scrapes that change no event's answer.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { startWebhook } from "../handler/adjust/webhook.js";
import { loadConfig } from "../handler/edges/config.js";
import { createMetrics, PREFIX } from "../handler/edges/metrics.js";
import { startReceiver } from "../handler/demo/optune-stand-in.js";
import { admissionReview, atCreate, makeCertificate } from "./support/admission.js";
import { startFakeApiServer } from "./support/fake-apiserver.js";
import { jobPod } from "./support/pods.js";
import { podEvent, startStack, type Stack } from "./support/stack.js";
import { scratchDir } from "./support/scratch.js";

interface Family {
  readonly name: string;
  readonly type: string;
  readonly metrics: ReadonlyArray<{ readonly labels?: Record<string, string>; readonly value?: string; readonly buckets?: Record<string, string>; readonly count?: string }>;
}

function families(text: string): Map<string, Family> {
  return new Map((parsePrometheusTextFormat(text) as Family[]).map((family) => [family.name, family]));
}

/** The value of one series: a counter or gauge's value, or a histogram's count. */
function value(all: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = all.get(PREFIX + name);
  const series = family?.metrics.find((metric) => Object.entries(labels).every(([key, wanted]) => metric.labels?.[key] === wanted));
  return series === undefined ? 0 : Number(series.value ?? series.count);
}

const scrape = async (stack: Stack) => {
  const response = await fetch(new URL("/metrics", stack.fn.url));
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return families(await response.text());
};

describe("GET /metrics of the function", () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", OPTUNE_SEND_DEADLINE: "1", LOG_LEVEL: "error" });
  });
  after(() => stack.close());

  test("is the Prometheus text format, with our families under one prefix and Node's process metrics", async () => {
    const all = await scrape(stack);
    for (const name of ["events_total", "messages_total", "optune_request_duration_seconds", "optune_requests_total", "optune_retries_total", "claims_total", "kubernetes_request_duration_seconds", "kubernetes_requests_total", "job_run_seconds", "job_exits_total"]) {
      assert.ok(all.has(PREFIX + name), `${PREFIX}${name}`);
    }
    // Only what this server moves: memory mode never sweeps (so no sweep gauge an alert could misread), and admissions are the webhook's.
    for (const name of ["sweeps_total", "sweep_pods_total", "last_successful_sweep_timestamp_seconds", "admissions_total"]) assert.ok(!all.has(PREFIX + name), `${PREFIX}${name} is exported`);
    assert.equal(all.get(`${PREFIX}job_run_seconds`)?.type, "HISTOGRAM");
    assert.ok(all.has("process_cpu_seconds_total") && all.has("nodejs_heap_size_used_bytes"));
  });

  test("events by type class and outcome; measured jobs' run times and exit codes; claims", async () => {
    const before = await scrape(stack);
    await stack.send(podEvent(jobPod({ uid: "m-sent" })));
    await stack.send(podEvent(jobPod({ uid: "m-sent" })));
    await stack.send(podEvent(jobPod({ uid: "m-failed-job", exitCode: 2, name: "m-failed-job" })));
    await stack.send(podEvent(jobPod({ namespace: "web" })));
    await stack.post("{", { "content-type": "application/cloudevents+json" });
    await stack.send({ ...podEvent(jobPod()), type: "dev.knative.apiserver.ref.update", data: { kind: "Pod", name: "x", namespace: "batch" } });
    const after = await scrape(stack);
    const moved = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
    assert.equal(moved("events_total", { type: "resource", outcome: "sent" }), 2);
    assert.equal(moved("events_total", { type: "resource", outcome: "already_reported" }), 1);
    assert.equal(moved("events_total", { type: "resource", outcome: "ignored" }), 1);
    assert.equal(moved("events_total", { type: "other", outcome: "malformed" }), 1);
    assert.equal(moved("events_total", { type: "reference", outcome: "ignored" }), 1);
    assert.equal(moved("job_run_seconds", {}), 2);
    assert.equal(moved("job_exits_total", { exit: "zero" }), 1);
    assert.equal(moved("job_exits_total", { exit: "nonzero" }), 1);
    assert.equal(moved("claims_total", { result: "won" }), 2);
    assert.equal(moved("claims_total", { result: "already_reported" }), 1);
    assert.equal(moved("messages_total", { message: "measurement", result: "sent" }), 2);
    assert.equal(moved("optune_requests_total", { status_class: "2xx" }), 2);
    assert.equal(moved("optune_request_duration_seconds", {}), 2);
  });

  test("a disrupted run (preempted) is counted by reason, not as a run time or an exit", async () => {
    const before = await scrape(stack);
    const pod = jobPod({ uid: "m-preempted", name: "m-preempted", exitCode: 143, reason: "Error" });
    await stack.send(podEvent({ ...pod, status: { ...pod.status, conditions: [{ type: "DisruptionTarget", status: "True", reason: "PreemptionByScheduler" }] } }));
    const after = await scrape(stack);
    const moved = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
    assert.equal(moved("disrupted_runs_total", { reason: "PreemptionByScheduler" }), 1);
    assert.equal(moved("job_run_seconds", {}), 0);
    assert.equal(moved("job_exits_total", { exit: "nonzero" }), 0);
  });

  test("a failing Optune: failed messages, attempts by status class, retries", async () => {
    const before = await scrape(stack);
    stack.receiver.respond = () => ({ status: 503, body: "{}" });
    try {
      assert.equal((await stack.send(podEvent(jobPod({ uid: "m-503" })))).status, 503);
    } finally {
      stack.receiver.respond = () => ({ status: 200, body: "{}" });
    }
    const after = await scrape(stack);
    const moved = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
    assert.equal(moved("messages_total", { message: "measurement", result: "failed" }), 1);
    assert.ok(moved("optune_requests_total", { status_class: "5xx" }) >= 2);
    assert.equal(moved("optune_retries_total", {}), moved("optune_requests_total", { status_class: "5xx" }) - 1);
    assert.equal(moved("events_total", { type: "resource", outcome: "failed" }), 1);
  });

  test("1,000 distinct app ids and pods: the label sets stay the same few", async () => {
    const seriesCount = (all: Map<string, Family>) => [...all.values()].filter((family) => family.name.startsWith(PREFIX)).reduce((sum, family) => sum + family.metrics.length, 0);
    const before = seriesCount(await scrape(stack));
    for (let i = 0; i < 1000; i++) await stack.send(podEvent(jobPod({ uid: `m-app-${i}`, name: `pod-${i}`, jobId: `app-${i}` })));
    const all = await scrape(stack);
    assert.ok(seriesCount(all) - before <= 2, `${seriesCount(all) - before} new series`);
    const text = await (await fetch(new URL("/metrics", stack.fn.url))).text();
    assert.doesNotMatch(text, /app-\d+|pod-\d+|resize-images/);
  });

  test("a scrape changes no event's answer", async () => {
    const event = podEvent(jobPod({ uid: "m-scrape" }));
    const [answer] = await Promise.all([stack.send(event).then((response) => response.json()), scrape(stack), scrape(stack)]);
    assert.deepEqual(answer, { outcome: "sent", pod: "batch/resize-images-8kq2x", appId: "resize-images", runSeconds: 42, exitCode: 0 });
    await scrape(stack);
    assert.equal(((await (await stack.send(event)).json()) as { outcome: string }).outcome, "already-reported");
  });
});

describe("events and claims, counted as plain numbers until scraped", () => {
  test("counted before prom-client is loaded, and between scrapes, each is exported once", async () => {
    const metrics = createMetrics({ server: "function", sweeps: false });
    metrics.event("resource", "ignored");
    metrics.claim("already-reported");
    const first = families((await metrics.render()).text);
    assert.deepEqual([value(first, "events_total", { type: "resource", outcome: "ignored" }), value(first, "claims_total", { result: "already_reported" })], [1, 1]);
    metrics.event("resource", "ignored");
    metrics.event("resource", "ignored");
    metrics.event("ping", "swept");
    const second = families((await metrics.render()).text);
    assert.deepEqual([value(second, "events_total", { type: "resource", outcome: "ignored" }), value(second, "events_total", { type: "ping", outcome: "swept" }), value(second, "claims_total", { result: "already_reported" })], [3, 1, 1]);
  });
});

describe("GET /metrics with claims in the pods", () => {
  test("Kubernetes requests by verb and status class; claims won, lost and refused; sweeps and the last one's time", async () => {
    const api = await startFakeApiServer();
    const stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", KUBECONFIG: api.kubeconfig, OPTUNE_DEDUPE: "annotation", LOG_LEVEL: "error" });
    try {
      const recently = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000).toISOString().replace(".000Z", "Z");
      const pod = api.create(jobPod({ name: "k1", uid: "k1", finishedAt: recently, startedAt: recently }));
      await stack.send(podEvent(pod));
      // A stale copy: its claim conflicts (409), the pod is read again and says sent.
      const second = api.create(jobPod({ name: "k2", uid: "k2" }));
      api.update("batch", "k2", (p) => void ((p.metadata as Record<string, unknown>).labels = { touched: "yes" }));
      await stack.send(podEvent(second));
      api.forbidden.add("patch");
      await stack.send(podEvent(api.create(jobPod({ name: "k3", uid: "k3" }))));
      api.forbidden.delete("patch");
      await stack.send({ specversion: "1.0", id: "ping-m", source: "ping", type: "dev.knative.sources.ping", data: {} });
      const all = await scrape(stack);
      assert.equal(value(all, "kubernetes_requests_total", { verb: "patch", status_class: "2xx" }), 4, "claim and mark of k1 and k2");
      assert.equal(value(all, "kubernetes_requests_total", { verb: "patch", status_class: "4xx" }), 2, "k2's conflict and k3's refusal");
      assert.equal(value(all, "kubernetes_requests_total", { verb: "get", status_class: "2xx" }), 1);
      assert.equal(value(all, "kubernetes_requests_total", { verb: "list", status_class: "2xx" }), 1);
      assert.equal(value(all, "claims_total", { result: "lost" }), 1);
      assert.equal(value(all, "claims_total", { result: "refused" }), 1);
      assert.equal(value(all, "claims_total", { result: "won" }), 3);
      assert.equal(value(all, "sweeps_total", { result: "done" }), 1);
      assert.ok(Math.abs(value(all, "last_successful_sweep_timestamp_seconds") - Date.now() / 1000) < 60);
      assert.ok(!all.has(`${PREFIX}admissions_total`));
    } finally {
      await stack.close();
      await api.close();
    }
  });

  test("a Kubernetes call that does not answer in time counts as a timeout, not an error", async () => {
    const api = await startFakeApiServer();
    const stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", KUBECONFIG: api.kubeconfig, OPTUNE_DEDUPE: "annotation", KUBE_API_TIMEOUT: "0.2", LOG_LEVEL: "error" });
    try {
      api.fault = ({ verb }) => (verb === "patch" ? "hang" : undefined);
      assert.equal((await stack.send(podEvent(api.create(jobPod({ name: "k-hang", uid: "k-hang" }))))).status, 503);
      const all = await scrape(stack);
      assert.equal(value(all, "kubernetes_requests_total", { verb: "patch", status_class: "timeout" }), 1);
      assert.equal(value(all, "kubernetes_requests_total", { verb: "patch", status_class: "error" }), 0);
    } finally {
      await stack.close();
      await api.close();
    }
  });
});

describe("GET /metrics in a dry run, and of the webhook", () => {
  test("a dry run counts printed messages", async () => {
    const stack = await startStack({ OPTUNE_URL: undefined, POD_NAMESPACES: "batch", LOG_LEVEL: "error" });
    try {
      await stack.send(podEvent(jobPod({ uid: "m-dry" })));
      assert.equal(value(await scrape(stack), "messages_total", { message: "measurement", result: "printed" }), 1);
    } finally {
      await stack.close();
    }
  });

  test("the webhook counts admissions by result, and Optune's adjust messages", async () => {
    const receiver = await startReceiver((request) => ({ status: 200, body: (request.body as { event?: string }).event === "WHATS_NEXT" ? '{"cmd":"MEASURE"}' : "{}" }));
    const dir = scratchDir("metrics-tls-");
    const pair = await makeCertificate();
    writeFileSync(join(dir, "tls.crt"), pair.cert);
    writeFileSync(join(dir, "tls.key"), pair.key);
    const config = loadConfig({ WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"), WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key"), OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme", POD_NAMESPACES: "batch", LOG_LEVEL: "error" });
    const webhook = await startWebhook(config, { print: () => {} });
    const request = (method: string, path: string, body?: string) =>
      new Promise<string>((resolve, reject) => {
        const sent = https.request({ host: "127.0.0.1", port: webhook.port, path, method, ca: pair.cert }, (response) => {
          let text = "";
          response.on("data", (chunk: Buffer) => (text += chunk.toString()));
          response.on("end", () => resolve(text));
        });
        sent.on("error", reject);
        sent.end(body);
      });
    try {
      await request("POST", "/mutate", JSON.stringify(admissionReview(atCreate(jobPod()))));
      await request("POST", "/mutate", JSON.stringify(admissionReview(atCreate(jobPod({ jobId: null })))));
      const all = families(await request("GET", "/metrics"));
      assert.equal(value(all, "admissions_total", { result: "unchanged" }), 1);
      assert.equal(value(all, "admissions_total", { result: "skipped" }), 1);
      // The webhook never sweeps nor handles events: an alert on those never reads the webhook.
      for (const name of ["last_successful_sweep_timestamp_seconds", "sweeps_total", "events_total", "claims_total", "job_run_seconds"]) assert.ok(!all.has(PREFIX + name), `the webhook exports ${name}`);
      assert.equal(value(all, "messages_total", { message: "adjust", result: "sent" }), 1);
    } finally {
      await webhook.stop("test over");
      await receiver.close();
    }
  });
});
