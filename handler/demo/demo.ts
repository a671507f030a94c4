// `servo-k8s-multijob demo`: the whole loop on a laptop, both halves. Starts the function (`serve`,
// as `npm start` runs it), the admission webhook (`webhook`, over HTTPS with a certificate made for
// the demo) and a local stand-in for Optune on free ports. A new job pod is admitted through the
// webhook with the stand-in's ADJUST applied; the pod then "runs", and its MEASUREMENT carries the
// settings. Then the sample events are replayed in binary mode, as an ApiServerSource sends them.
// It runs from a clone and from the image alike: no dev dependency, only the files the image ships
// (the bundle, and example/events and example/admission beside it).
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { applyPatch } from "../adjust/apply-patch.js";
import type { PatchOperation } from "../adjust/patch.js";
import { parseCpu, parseMemory } from "../jobs/quantity.js";
import { toBinaryRequest } from "../measure/cloudevent.js";
import { readEventFile, type FileEvent } from "../measure/invoke.js";
import { eventNamespace, podUpdateEvent } from "../measure/pod-event.js";
import { findPrometheus, startScrapedKubelet, type ScrapedKubelet } from "./cadvisor-stand-in.js";
import { startReceiver, type ReceivedRequest } from "./optune-stand-in.js";
import { isNamespaceName, isRecord, podRef, podUid } from "../jobs/pod.js";
import { selfSignedCertificate } from "./certificate.js";
import { endAndExit, isEnding, ownChild, ownFolder, releaseFolder } from "./owned.js";

export const EXAMPLE_EVENTS = fileURLToPath(new URL("../../example/events/", import.meta.url));
const NEW_POD_REVIEW = fileURLToPath(new URL("../../example/admission/review.json", import.meta.url));
const CLI = fileURLToPath(new URL("./servo.cjs", import.meta.url));
const ACCOUNT = "demo-account";
/** The stand-in tunes this app: DESCRIBE, then ADJUST, then MEASURE. Every other app is only measured. */
const TUNED_APP = "resize-images";
const NEW_SETTINGS = { cpu: 1.5, mem: 536870912 };

export async function demo(paths: readonly string[], out: (line: string) => void): Promise<number> {
  try {
    return await runDemo(paths, out);
  } catch (error) {
    // Its servers stopped under it because the demo is being ended: that ends it, not this error.
    if (isEnding()) return new Promise<number>(() => {});
    // Anything else: said in one line, and its servers ended with it (the stand-in would hold the process).
    process.stderr.write(`servo-k8s-multijob demo: ${(error as Error).message}\n`);
    return endAndExit(1);
  }
}

async function runDemo(paths: readonly string[], out: (line: string) => void): Promise<number> {
  const files = paths.length > 0 ? paths : await exampleFiles();
  const loaded = await Promise.all(files.map((file) => readEventFile(file)));
  const events: FileEvent[] = [];
  for (const result of loaded) {
    if ("problem" in result) {
      out(`${result.problem}\n`);
      return 2;
    }
    events.push(...result.events);
  }

  const receiver = await startReceiver(standIn());
  // With Debian's prometheus at hand, a stand-in kubelet it scrapes: MEASUREMENTs then carry cpu_time and max_memory.
  const prometheusBinary = findPrometheus();
  const scraped = prometheusBinary === undefined ? undefined : await startScrapedKubelet(prometheusBinary).catch(() => undefined);
  const tls = ownFolder(mkdtempSync(join(tmpdir(), "servo-demo-tls-")));
  const pair = selfSignedCertificate();
  writeFileSync(join(tls, "tls.crt"), pair.cert);
  writeFileSync(join(tls, "tls.key"), pair.private);
  const env = { PATH: process.env.PATH, OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: ACCOUNT, POD_NAMESPACES: watchedNamespaces(events).join(","), LOG_LEVEL: "info" };
  // The sample pods exist in no cluster: keep the record in memory even if a kubeconfig is around.
  const fn = await startProcess("serve", { ...env, PORT: "0", OPTUNE_DEDUPE: "memory", ...(scraped === undefined ? {} : { PROMETHEUS_URL: scraped.url, PROMETHEUS_SCRAPE_INTERVAL: "1" }) });
  const webhook = await startProcess("webhook", { ...env, WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: join(tls, "tls.crt"), WEBHOOK_TLS_KEY_FILE: join(tls, "tls.key") });
  out(`Function on http://127.0.0.1:${fn.port}/ (PID ${fn.pid}); admission webhook on https://127.0.0.1:${webhook.port}/mutate (PID ${webhook.pid}); Optune stand-in on ${receiver.url}/\nWatching the namespaces ${env.POD_NAMESPACES} (POD_NAMESPACES).\n\n`);
  try {
    await adjustNewPod(`https://127.0.0.1:${webhook.port}/mutate`, `http://127.0.0.1:${fn.port}/`, pair.cert, out);
    const rows: string[][] = [];
    for (const { file, event } of events) {
      const { headers, body } = toBinaryRequest(event);
      const response = await fetch(`http://127.0.0.1:${fn.port}/`, { method: "POST", headers, body });
      const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      rows.push([relativeName(file), String(response.status), String(answer.outcome ?? answer.error ?? ""), String(answer.reason ?? answer.code ?? "")]);
    }
    out(`2. Replayed ${events.length} events in binary mode:\n${table(["EVENT FILE", "HTTP", "OUTCOME", "WHY"], rows)}\n`);
    await resourceUsage(scraped, `http://127.0.0.1:${fn.port}/`, out);
  } finally {
    fn.stop();
    webhook.stop();
    await scraped?.stop();
  }
  const [fnExit, webhookExit] = await Promise.all([fn.exited, webhook.exited]);
  await receiver.close();
  releaseFolder(tls);

  const measurements = receiver.requests.filter((request) => isRecord(request.body) && request.body.event === "MEASUREMENT");
  // A "never ran" message names no pod: find it by its Idempotency-Key, the pod's uid.
  const pods = new Map(events.flatMap(({ podEvent }) => (podEvent.kind === "resource" ? [[podUid(podEvent.pod), podRef(podEvent.pod)] as const] : [])));
  const rows = measurements.map((request) => measurementRow(request, pods.get(String(request.headers["idempotency-key"]))));
  out(`The stand-in got ${measurements.length} MEASUREMENTs:\n${table(["POD", "APP ID", "DURATION", "EXIT CODE", "SETTINGS", "CPU_TIME", "MAX_MEMORY"], rows)}\n`);
  const lifecycle = receiver.requests.filter((request) => request.path.includes("/_global_/")).map((request) => describeLifecycle(request.body));
  out(`Lifecycle messages to app _global_: ${lifecycle.join(", ") || "none"}. The function exited with code ${fnExit}, the webhook with ${webhookExit}.\n`);
  return fnExit === 0 && webhookExit === 0 ? 0 : 1;
}

/** The sample pod's namespace, default, and every namespace the events' pods are in: the demo watches them all. */
export function watchedNamespaces(events: readonly FileEvent[]): string[] {
  const namespaces = new Set(["default"]);
  for (const { podEvent } of events) {
    const namespace = eventNamespace(podEvent);
    if (isNamespaceName(namespace)) namespaces.add(namespace);
  }
  return [...namespaces].sort();
}

/** Optune as the demo plays it: the tuned app gets DESCRIBE, ADJUST, then MEASURE; the rest MEASURE. */
function standIn(): (request: Omit<ReceivedRequest, "status">) => { status: number; body: string } {
  let questions = 0;
  const adjust = { cmd: "ADJUST", param: { state: { application: { components: { worker: { settings: { cpu: { value: NEW_SETTINGS.cpu }, mem: { value: NEW_SETTINGS.mem } } } } } }, control: {} } };
  return (request) => {
    if (!isRecord(request.body) || request.body.event !== "WHATS_NEXT") return { status: 200, body: "{}" };
    if (!request.path.includes(`/${TUNED_APP}/`)) return { status: 200, body: '{"cmd":"MEASURE","param":{}}' };
    const command = [{ cmd: "DESCRIBE", param: {} }, adjust][questions++] ?? { cmd: "MEASURE", param: { metrics: ["duration"], control: {} } };
    return { status: 200, body: JSON.stringify(command) };
  };
}

/** Part 1: the new pod through the webhook, the patch applied as the API server would, then the pod's run reported. */
async function adjustNewPod(webhookUrl: string, functionUrl: string, ca: string, out: (line: string) => void): Promise<void> {
  const review = JSON.parse(readFileSync(NEW_POD_REVIEW, "utf8")) as { request: { object: Record<string, unknown> } };
  const answer = JSON.parse(await postHttps(webhookUrl, JSON.stringify(review), ca)) as { response?: { allowed?: boolean; patch?: string; warnings?: string[] } };
  const operations = answer.response?.patch === undefined ? [] : (JSON.parse(Buffer.from(answer.response.patch, "base64").toString()) as PatchOperation[]);
  const pod = applyPatch(review.request.object, operations) as {
    metadata: Record<string, unknown> & { generateName: string; annotations?: Record<string, string> };
    spec: { containers: Array<{ name: string; resources: { limits: Record<string, string> } }> };
    status?: unknown;
  };
  const before = (review.request.object as typeof pod).spec.containers[0]!.resources.limits;
  const after = pod.spec.containers[0]!.resources.limits;
  out(`1. A new pod of Job ${TUNED_APP} admitted through the webhook (the stand-in said DESCRIBE, ADJUST, MEASURE):\n`);
  out(
    table(
      ["CONTAINER", "CPU", "MEMORY", "ANNOTATION optune.ai/settings"],
      [[pod.spec.containers[0]!.name, `${before.cpu} → ${after.cpu} (${parseCpu(after.cpu)} cores)`, `${before.memory} → ${after.memory} (${parseMemory(after.memory)} bytes)`, pod.metadata.annotations?.["optune.ai/settings"] ?? "(none)"]],
    ),
  );
  if (answer.response?.warnings !== undefined) out(`   warnings: ${answer.response.warnings.join("; ")}\n`);

  // The pod runs for 73 s and ends; its update event goes to the function, which measures it.
  const finished = Date.now() - 5000;
  const at = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
  pod.metadata = { ...pod.metadata, name: `${pod.metadata.generateName}demo1`, uid: randomUUID(), creationTimestamp: at(finished - 80_000), resourceVersion: "1" };
  pod.status = { phase: "Succeeded", containerStatuses: [{ name: "worker", state: { terminated: { exitCode: 0, reason: "Completed", startedAt: at(finished - 73_000), finishedAt: at(finished) } } }] };
  const { headers, body } = toBinaryRequest(podUpdateEvent(pod, randomUUID(), "servo-k8s-multijob/demo"));
  const response = await fetch(functionUrl, { method: "POST", headers, body });
  const outcome = (await response.json()) as { outcome?: string; runSeconds?: number };
  out(`   The pod ran ${outcome.runSeconds ?? "?"} s; its update event was answered ${response.status} ${outcome.outcome ?? ""}, with the settings in its MEASUREMENT.\n\n`);
}

/**
 * Part 3: a job that runs for real on the stand-in kubelet, 6 s at half a core with a 96 MiB peak,
 * so that its MEASUREMENT carries what Prometheus saw; or how to see that.
 */
async function resourceUsage(scraped: ScrapedKubelet | undefined, functionUrl: string, out: (line: string) => void): Promise<void> {
  if (scraped === undefined) {
    out("3. Resource usage: no Prometheus here, so the MEASUREMENTs carry no cpu_time and max_memory. Install Debian's prometheus\n   package (or run `sudo bash test/cluster/install.sh`) and run the demo again: a job then runs on a stand-in kubelet\n   that Prometheus scrapes, and its MEASUREMENT carries both (PROMETHEUS_URL in a deployment).\n\n");
    return;
  }
  const from = Math.ceil(Date.now() / 1000) * 1000 + 1000;
  const id = "5e".repeat(32);
  scraped.attempts.push({ pod: "thumbnails-res42", namespace: "default", id, from, to: from + 6000, rate: 0.5, peak: 96 * 1024 * 1024, maxUsage: "zero" });
  out("3. A job runs 6 s at half a core, peaking at 96 MiB, on a stand-in kubelet that Prometheus scrapes every second...\n");
  await new Promise((resolve) => setTimeout(resolve, from + 6000 + 2500 - Date.now()));
  const at = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "thumbnails-res42", namespace: "default", uid: randomUUID(), resourceVersion: "1", creationTimestamp: at(from - 1000) },
    spec: { restartPolicy: "Never", containers: [{ name: "worker", env: [{ name: "JOBID", value: "nightly-thumbnails" }] }] },
    status: { phase: "Succeeded", containerStatuses: [{ name: "worker", state: { terminated: { exitCode: 0, reason: "Completed", startedAt: at(from), finishedAt: at(from + 6000), containerID: `containerd://${id}` } } }] },
  };
  const { headers, body } = toBinaryRequest(podUpdateEvent(pod, randomUUID(), "servo-k8s-multijob/demo"));
  const response = await fetch(functionUrl, { method: "POST", headers, body });
  const outcome = (await response.json()) as { outcome?: string };
  out(`   Its update event was answered ${response.status} ${outcome.outcome ?? ""}; its MEASUREMENT carries cpu_time and max_memory (below).\n\n`);
}

function postHttps(url: string, body: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: "POST", ca, headers: { "content-type": "application/json" } }, (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () => resolve(text));
    });
    request.on("error", reject);
    request.end(body);
  });
}

async function exampleFiles(): Promise<string[]> {
  return (await readdir(EXAMPLE_EVENTS)).filter((name) => name.endsWith(".json")).sort().map((name) => join(EXAMPLE_EVENTS, name));
}

interface ServerProcess {
  readonly port: number;
  readonly pid: number | undefined;
  readonly exited: Promise<number | null>;
  stop(): void;
}

/** Runs `servo-k8s-multijob <command>` and waits for its "listening" log line, which names the port. */
async function startProcess(command: "serve" | "webhook", env: Record<string, string | undefined>): Promise<ServerProcess> {
  const child = ownChild(spawn(process.execPath, [CLI, command], { env, stdio: ["ignore", "ignore", "pipe"] }));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const logs: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stderr }).on("line", (line) => {
      logs.push(line);
      const record = safeJson(line);
      if (isRecord(record) && /listening$/.test(String(record.msg)) && typeof record.port === "number") resolve(record.port);
    });
    void exited.then((code) => reject(new Error(`${command} exited with code ${code} before listening:\n${logs.join("\n")}`)));
  });
  return { port, pid: child.pid, exited, stop: () => child.kill("SIGTERM") };
}

function measurementRow(request: ReceivedRequest, pod: string | undefined): string[] {
  const appId = decodeURIComponent(request.path.split("/")[3] ?? "?");
  const param = isRecord(request.body) && isRecord(request.body.param) ? request.body.param : {};
  const annotations = isRecord(param.annotations) ? param.annotations : {};
  const metrics = isRecord(param.metrics) ? param.metrics : {};
  const duration = isRecord(metrics.duration) ? `${String(metrics.duration.value)} s` : `(${String(param.message ?? param.status)})`;
  const resource = (name: string, unit: string) => (isRecord(metrics[name]) ? `${String(metrics[name].value)} ${unit}` : "-");
  return [String(annotations.pod ?? pod ?? "?"), appId, duration, String(annotations.exitcode ?? "-"), String(annotations.settings ?? "-"), resource("cpu_time", "s"), resource("max_memory", "bytes")];
}

function describeLifecycle(body: unknown): string {
  if (!isRecord(body)) return "?";
  const reason = isRecord(body.param) && body.param.reason !== undefined ? ` (${String(body.param.reason)})` : "";
  return `${String(body.event)}${reason}`;
}

function relativeName(file: string): string {
  return file.startsWith(EXAMPLE_EVENTS) ? `example/events/${file.slice(EXAMPLE_EVENTS.length)}` : file;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const line = (cells: readonly string[]) => `  ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd()}\n`;
  return [header, ...rows].map(line).join("");
}

function safeJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

