// `servo-k8s-multijob demo`: the whole path on a laptop. Starts the function (the real server, as
// `npm start` runs it) and a local Optune receiver on free ports, replays sample events through
// HTTP in binary mode as an ApiServerSource would, and shows what Optune would have received.
import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import fetch from "node-fetch";
import { toBinaryRequest } from "./measure/cloudevent.js";
import { readEventFile, type FileEvent } from "./measure/invoke.js";
import { startReceiver, type ReceivedRequest } from "./optune-receiver.js";
import { isRecord } from "./pod.js";

export const EXAMPLE_EVENTS = fileURLToPath(new URL("../../example/events/", import.meta.url));
const CLI = fileURLToPath(new URL("./cli.js", import.meta.url));
const ACCOUNT = "demo-account";

export async function demo(paths: readonly string[], out: (line: string) => void): Promise<number> {
  const files = paths.length > 0 ? paths : await exampleFiles();
  const loaded = await Promise.all(files.map(readEventFile));
  const events: FileEvent[] = [];
  for (const result of loaded) {
    if ("problem" in result) {
      out(`${result.problem}\n`);
      return 2;
    }
    events.push(...result.events);
  }

  const receiver = await startReceiver();
  const fn = await startFunctionProcess(receiver.template);
  out(`Function listening on ${fn.url} (PID ${fn.pid}); local Optune receiver on ${receiver.url}/\n\n`);
  try {
    const rows: string[][] = [];
    for (const { file, event } of events) {
      const { headers, body } = toBinaryRequest(event);
      const response = await fetch(fn.url, { method: "POST", headers, body });
      const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      rows.push([relativeName(file), String(response.status), String(answer.outcome ?? answer.error ?? ""), String(answer.reason ?? "")]);
    }
    out(`Replayed ${events.length} events in binary mode:\n${table(["EVENT FILE", "HTTP", "OUTCOME", "WHY"], rows)}\n`);
  } finally {
    fn.stop();
  }
  const exitCode = await fn.exited;
  await receiver.close();

  const measurements = receiver.requests.filter((request) => isRecord(request.body) && request.body.event === "MEASUREMENT");
  out(`The receiver got ${measurements.length} MEASUREMENTs:\n${table(["POD", "APP ID", "DURATION", "EXIT CODE"], measurements.map((request) => measurementRow(request, events)))}\n`);
  const lifecycle = receiver.requests.filter((request) => request.path.includes("/_global_/")).map((request) => describeLifecycle(request.body));
  out(`Lifecycle messages to app _global_: ${lifecycle.join(", ") || "none"}. The function exited with code ${exitCode}.\n`);
  return exitCode === 0 ? 0 : 1;
}

async function exampleFiles(): Promise<string[]> {
  return (await readdir(EXAMPLE_EVENTS)).filter((name) => name.endsWith(".json")).sort().map((name) => join(EXAMPLE_EVENTS, name));
}

interface FunctionProcess {
  readonly url: string;
  readonly pid: number | undefined;
  readonly exited: Promise<number | null>;
  stop(): void;
}

/** Runs `servo-k8s-multijob serve` on a free port and waits for its "listening" log line. */
async function startFunctionProcess(template: string): Promise<FunctionProcess> {
  const child = spawn(process.execPath, [CLI, "serve"], {
    // The sample pods exist in no cluster: keep the record in memory even if a kubeconfig is around.
    env: { PATH: process.env.PATH, PORT: "0", OPTUNE_URL: template, OPTUNE_ACCOUNT: ACCOUNT, POD_NAMESPACES: "default", OPTUNE_DEDUPE: "memory", LOG_LEVEL: "info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const logs: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stderr }).on("line", (line) => {
      logs.push(line);
      const record = safeJson(line);
      if (isRecord(record) && record.msg === "listening" && typeof record.port === "number") resolve(record.port);
    });
    void exited.then((code) => reject(new Error(`the function exited with code ${code} before listening:\n${logs.join("\n")}`)));
  });
  return { url: `http://127.0.0.1:${port}/`, pid: child.pid, exited, stop: () => child.kill("SIGTERM") };
}

function measurementRow(request: ReceivedRequest, events: readonly FileEvent[]): string[] {
  const uid = request.headers["idempotency-key"];
  const source = events.find(({ podEvent }) => podEvent.kind === "resource" && podEvent.pod.metadata?.uid === uid);
  const pod = source?.podEvent.kind === "resource" ? `${source.podEvent.pod.metadata?.namespace}/${source.podEvent.pod.metadata?.name}` : "?";
  const appId = decodeURIComponent(request.path.split("/")[3] ?? "?");
  const param = isRecord(request.body) && isRecord(request.body.param) ? request.body.param : {};
  const metrics = isRecord(param.metrics) ? param.metrics : {};
  const duration = isRecord(metrics.duration) ? `${String(metrics.duration.value)} s` : `(${String(param.message ?? param.status)})`;
  const exitCode = isRecord(param.annotations) ? String(param.annotations.exitcode) : "-";
  return [pod, appId, duration, exitCode];
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
