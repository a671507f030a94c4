// The admission webhook over real HTTPS (a certificate made here), against a scripted Optune
// stand-in that counts what it gets. Every patch is applied to the pod with a JSON Patch library.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { startWebhook, type RunningWebhook } from "../handler/adjust/webhook.js";
import { loadConfig } from "../handler/edges/config.js";
import { startReceiver, type Receiver, type ReceivedRequest } from "../handler/demo/optune-stand-in.js";
import { parseCpu, parseMemory } from "../handler/jobs/quantity.js";
import { admissionReview, applyBase64Patch, atCreate, makeCertificate, presentedCertificate } from "./support/admission.js";
import { seedPods } from "./support/mutations.js";
import { jobPod } from "./support/pods.js";
import { scratchDir } from "./support/scratch.js";

interface Answer {
  readonly status: number;
  readonly body: { apiVersion?: string; kind?: string; response?: { uid: string; allowed: boolean; patchType?: string; patch?: string; warnings?: string[] }; error?: string };
}

function post(url: string, body: unknown, ca: string, path = "/mutate"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const target = new URL(path, url);
    const request = https.request(target, { method: "POST", ca, headers: { "content-type": "application/json" } }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || "{}") as Answer["body"] }));
    });
    request.on("error", reject);
    request.end(typeof body === "string" ? body : JSON.stringify(body));
  });
}

const ADJUST = { cmd: "ADJUST", param: { state: { application: { components: { worker: { settings: { cpu: { value: 1.5 }, mem: { value: 536870912 } } } } } }, control: {} } };

/** Optune scripted per message: each WHATS_NEXT gets the next command of `commands` (the last repeats). */
function scripted(receiver: Receiver, ...commands: Array<object | string | { status: number; body?: string; delayMs?: number }>) {
  let index = 0;
  receiver.requests.length = 0;
  receiver.respond = (request) => {
    if ((request.body as { event?: string }).event !== "WHATS_NEXT") return { status: 200, body: "{}" };
    const next = commands[Math.min(index++, commands.length - 1)]!;
    if (typeof next === "string") return { status: 200, body: next };
    if ("status" in next && typeof next.status === "number") return next as { status: number };
    return { status: 200, body: JSON.stringify(next) };
  };
}
const events = (receiver: Receiver) => receiver.requests.map((request: ReceivedRequest) => (request.body as { event: string }).event);

describe("the admission webhook over HTTPS", () => {
  let receiver: Receiver;
  let webhook: RunningWebhook;
  let ca: string;
  let dir: string;
  const logs: string[] = [];
  before(async () => {
    receiver = await startReceiver();
    dir = scratchDir("webhook-tls-");
    const pair = await makeCertificate();
    ca = pair.cert;
    writeFileSync(join(dir, "tls.crt"), pair.cert);
    writeFileSync(join(dir, "tls.key"), pair.key);
    const config = loadConfig({
      WEBHOOK_PORT: "0",
      WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"),
      WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key"),
      OPTUNE_URL: receiver.template,
      OPTUNE_ACCOUNT: "acme",
      OPTUNE_AUTH_TOKEN: "t0k",
      POD_NAMESPACES: "batch,default",
      OPTUNE_ADJUST_BUDGET: "1",
      OPTUNE_DEDUPE: "memory",
      LOG_LEVEL: "debug",
    });
    webhook = await startWebhook(config, { print: () => {}, logLine: (line) => logs.push(line), tlsPollMs: 50 });
  });
  after(async () => {
    await webhook.stop("test over");
    await receiver.close();
  });
  beforeEach(() => {
    receiver.requests.length = 0;
  });

  const admit = (pod: unknown, options = {}) => post(webhook.url, admissionReview(pod, options), ca);
  const jobAtCreate = (facts = {}) => atCreate(jobPod(facts));

  test("the whole loop: DESCRIBE, ADJUST, MEASURE; the pod is patched with Optune's settings", async () => {
    scripted(receiver, { cmd: "DESCRIBE", param: {} }, ADJUST, { cmd: "MEASURE", param: { metrics: ["duration"], control: {} } });
    const pod = jobAtCreate({ resources: { limits: { cpu: "500m", memory: "256Mi" }, requests: { cpu: "500m", memory: "256Mi" } } });
    const { status, body } = await admit(pod, { uid: "uid-loop" });
    assert.equal(status, 200);
    assert.deepEqual([body.apiVersion, body.kind, body.response?.uid, body.response?.allowed, body.response?.patchType, body.response?.warnings], ["admission.k8s.io/v1", "AdmissionReview", "uid-loop", true, "JSONPatch", undefined]);
    const patched = applyBase64Patch(pod, body.response!.patch!) as { metadata: { annotations: Record<string, string> }; spec: { containers: Array<{ resources: unknown }> } };
    assert.deepEqual(patched.spec.containers[0]!.resources, { limits: { cpu: "1500m", memory: "512Mi" }, requests: { cpu: "1500m", memory: "512Mi" } });
    assert.equal(patched.metadata.annotations["optune.ai/settings"], '{"container":"worker","cpu":1.5,"mem":536870912}');

    assert.deepEqual(events(receiver), ["WHATS_NEXT", "DESCRIPTION", "WHATS_NEXT", "ADJUSTMENT", "WHATS_NEXT"]);
    for (const request of receiver.requests) {
      assert.equal(request.path, "/metrics/acme/resize-images/servo");
      assert.equal(request.headers.authorization, "Bearer t0k");
    }
    const description = receiver.requests[1]!.body as { param: { application: { components: { worker: { settings: { cpu: { value: number }; mem: { value: number } } } } } } };
    assert.deepEqual([description.param.application.components.worker.settings.cpu.value, description.param.application.components.worker.settings.mem.value], [0.5, 268435456]);
    assert.deepEqual(receiver.requests[3]!.body, { event: "ADJUSTMENT", param: {} });
  });

  for (const [label, commands, expectedEvents] of [
    ["MEASURE at once", [{ cmd: "MEASURE", param: {} }], ["WHATS_NEXT"]],
    ["SLEEP, then SLEEP again", [{ cmd: "SLEEP", param: { duration: 60 } }], ["WHATS_NEXT", "WHATS_NEXT"]],
    ["SLEEP, then MEASURE", [{ cmd: "SLEEP", param: { duration: 60 } }, { cmd: "MEASURE" }], ["WHATS_NEXT", "WHATS_NEXT"]],
    ["an empty body", [""], ["WHATS_NEXT"]],
    ["{}", [{}], ["WHATS_NEXT"]],
    ["a command we do not know", [{ cmd: "RESTART" }], ["WHATS_NEXT"]],
  ] as const) {
    test(`${label}: allowed, no patch, no warning`, async () => {
      scripted(receiver, ...commands);
      const { status, body } = await admit(jobAtCreate());
      assert.equal(status, 200);
      assert.deepEqual(body.response, { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true });
      assert.deepEqual(events(receiver), expectedEvents);
    });
  }

  for (const [label, param, message] of [
    ["an unknown component", { state: { application: { components: { sidecar: { settings: { cpu: { value: 1 } } } } } } }, 'component "sidecar" is not a container of the pod'],
    ["a value out of range", { state: { application: { components: { worker: { settings: { cpu: { value: 8 } } } } } } }, "worker cpu 8 is outside 0.1..3.5"],
    ["an unknown setting", { application: { components: { worker: { settings: { replicas: { value: 3 } } } } } }, 'setting "replicas" of worker is not cpu or mem'],
  ] as const) {
    test(`an ADJUST with ${label}: ADJUSTMENT failed, the pod unpatched`, async () => {
      scripted(receiver, { cmd: "ADJUST", param }, { cmd: "MEASURE" });
      const { body } = await admit(jobAtCreate());
      assert.deepEqual(body.response, { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true });
      assert.deepEqual(receiver.requests[1]?.body, { event: "ADJUSTMENT", param: { status: "failed", message } });
    });
  }

  for (const [label, answer, warning] of [
    ["answering 503", { status: 503, body: "{}" }, "optune: answered 503 to WHATS_NEXT; pod admitted unchanged"],
    ["answering 401", { status: 401, body: "{}" }, "optune: answered 401 to WHATS_NEXT; pod admitted unchanged"],
    ["answering HTML", "<html>busy</html>", "optune: sent an answer that is not JSON; pod admitted unchanged"],
    ["hanging", { status: 200, body: "{}", delayMs: 5000 }, "optune: no answer within 1 s; pod admitted unchanged"],
  ] as const) {
    test(`Optune ${label}: allowed within the budget + 1 s, unchanged, one warning`, async () => {
      scripted(receiver, answer);
      const started = Date.now();
      const { status, body } = await admit(jobAtCreate(), { uid: `uid-${label}` });
      assert.ok(Date.now() - started < 1000 + 1000, `took ${Date.now() - started} ms`);
      assert.equal(status, 200);
      assert.deepEqual(body.response, { uid: `uid-${label}`, allowed: true, warnings: [warning] });
      assert.ok(warning.length < 120);
      assert.ok(logs.some((line) => line.includes('"level":"warn"') && line.includes(`uid-${label}`)));
    });
  }

  for (const [label, pod, options] of [
    ["a dry run", jobPod(), { dryRun: true }],
    ["a pod in a namespace not watched", jobPod({ namespace: "web" }), { namespace: "web" }],
    ["a pod without the app id", jobPod({ jobId: null }), {}],
    ["an UPDATE", jobPod(), { operation: "UPDATE" }],
    ["another resource", jobPod(), { resource: "services" }],
  ] as const) {
    test(`${label}: allowed, no patch, no call to Optune`, async () => {
      scripted(receiver, ADJUST);
      const { body } = await admit(atCreate(pod), options);
      assert.deepEqual(body.response, { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true });
      assert.equal(receiver.requests.length, 0);
    });
  }

  test("the namespace comes from the request when the object does not carry it yet", async () => {
    scripted(receiver, ADJUST, { cmd: "MEASURE" });
    const pod = jobAtCreate() as { metadata: Record<string, unknown> };
    delete pod.metadata.namespace;
    const { body } = await admit(pod, { namespace: "batch" });
    assert.equal(body.response?.patchType, "JSONPatch");
  });

  test("a body that is not an AdmissionReview: 400", async () => {
    for (const body of ["{", JSON.stringify({ kind: "Pod" }), JSON.stringify({ ...admissionReview(jobPod()), apiVersion: "admission.k8s.io/v1beta1" })]) {
      assert.equal((await post(webhook.url, body, ca)).status, 400, body);
    }
  });

  test("/healthz and /readyz answer 200; other paths 404", async () => {
    for (const path of ["/healthz", "/readyz"]) {
      const status = await new Promise<number>((resolve, reject) => https.get(new URL(path, webhook.url), { ca }, (response) => (response.resume(), resolve(response.statusCode ?? 0))).on("error", reject));
      assert.equal(status, 200);
    }
    assert.equal((await post(webhook.url, "{}", ca, "/")).status, 404);
  });

  test("real captured pods (as held at CREATE) are admitted with Optune's settings; every patch applies and keeps requests <= limits", async () => {
    let adjusted = 0;
    for (const seed of seedPods()) {
      const pod = atCreate(seed);
      scripted(receiver, { cmd: "ADJUST", param: { state: { application: { components: { [String((pod as { spec?: { containers?: Array<{ name?: string }> } }).spec?.containers?.[0]?.name)]: { settings: { cpu: { value: 0.75 }, mem: { value: 134217728 } } } } } } } }, { cmd: "MEASURE" });
      const { status, body } = await admit(pod);
      assert.equal(status, 200);
      assert.equal(body.response?.allowed, true);
      if (body.response?.patch === undefined) continue;
      adjusted++;
      const patched = applyBase64Patch(pod, body.response.patch) as { spec: { containers: Array<{ resources: { limits: Record<string, string>; requests: Record<string, string> } }> } };
      const { limits, requests } = patched.spec.containers[0]!.resources;
      assert.equal(parseCpu(limits.cpu), 0.75);
      assert.equal(parseMemory(requests.memory), 134217728);
      for (const [name, parse] of [["cpu", parseCpu], ["memory", parseMemory]] as const) {
        if (limits[name] !== undefined && requests[name] !== undefined) assert.ok(parse(requests[name])! <= parse(limits[name])!);
      }
    }
    assert.ok(adjusted >= 5, `${adjusted} pods adjusted`);
  });

  test("the certificate is rotated on disk: new connections get the new one, without a restart", async () => {
    const before = await presentedCertificate(webhook.port);
    const next = await makeCertificate("servo-webhook.rotated");
    writeFileSync(join(dir, "tls.key"), next.key);
    writeFileSync(join(dir, "tls.crt"), next.cert);
    const deadline = Date.now() + 5000;
    let now = before;
    while (now === before && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      now = await presentedCertificate(webhook.port);
    }
    assert.notEqual(now, before);
    scripted(receiver, { cmd: "MEASURE" });
    assert.equal((await post(webhook.url, admissionReview(jobAtCreate()), next.cert)).status, 200);
  });
});
