// `npm run bench`: the function against (A) a bare node:http floor that only parses the body and
// (B) Knative's faas-js-runtime running a function that does the same, in one run, interleaved
// over rounds. Servers are pinned to one core, the load (autocannon, in its own process) and the
// Optune stand-in to the other, when taskset is there. Reported per server: requests per second,
// server CPU per request (from /proc), p50/p99 latency, RSS after load, and cold start (spawn to
// the first 2xx on a real event, median of 10); then the ratios to A and B, and the targets.
// `--smoke` runs each part briefly (CI, so the benchmark cannot rot); its figures mean nothing.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { requestSource, type Mode, type Stream } from "./events.js";
import { pipelineCosts } from "./pipeline.js";

const smoke = process.argv.includes("--smoke");
const SECONDS = smoke ? 1 : Number(process.env.BENCH_SECONDS ?? "5");
const ROUNDS = smoke ? 1 : Number(process.env.BENCH_ROUNDS ?? "3");
const COLD_STARTS = smoke ? 2 : 10;
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const node = process.execPath;

const pinning = availableParallelism() >= 2 && spawnSync("taskset", ["-V"]).status === 0;
const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim() || "100");
/** Servers on core 0; this process, the load and the Optune stand-in on core 1. */
const onCore = (core: number, command: string[]): string[] => (pinning ? ["taskset", "-c", String(core), ...command] : command);
if (pinning) execFileSync("taskset", ["-p", "-c", "1", String(process.pid)], { stdio: "ignore" });

type Server = "A" | "B" | "ours";
const SERVERS: readonly Server[] = (process.env.BENCH_SERVERS?.split(",") as Server[] | undefined) ?? ["A", "B", "ours"];
const LABEL: Record<Server, string> = { A: "A node:http floor", B: "B faas-js-runtime", ours: "servo-k8s-multijob" };

interface Config {
  readonly stream: Stream;
  readonly connections: number;
  readonly mode: Mode;
}
/** BENCH_CONFIGS="ignored@16,mix@64,mix@16/structured" picks other configurations (for finding where the time goes). */
const chosen = process.env.BENCH_CONFIGS?.split(",").map((text): Config => {
  const [, stream, connections, mode] = /^(mix|reported|ignored|sent)@(\d+)(?:\/(binary|structured))?$/.exec(text.trim()) ?? [];
  if (stream === undefined) throw new Error(`BENCH_CONFIGS: cannot read ${JSON.stringify(text)}`);
  return { stream: stream as Stream, connections: Number(connections), mode: (mode ?? "binary") as Mode };
});
const CONFIGS: readonly Config[] = chosen ?? (smoke
  ? [
      { stream: "mix", connections: 16, mode: "binary" },
      { stream: "reported", connections: 16, mode: "binary" },
    ]
  : [
      { stream: "mix", connections: 16, mode: "binary" },
      { stream: "mix", connections: 64, mode: "binary" },
      { stream: "reported", connections: 16, mode: "binary" },
      { stream: "reported", connections: 64, mode: "binary" },
      { stream: "mix", connections: 16, mode: "structured" },
    ]);
const configName = (config: Config) => `${config.stream}@${config.connections}${config.mode === "structured" ? " structured" : ""}`;

interface Measured {
  readonly perSecond: number;
  readonly cpuMicrosPerRequest: number;
  readonly p50: number;
  readonly p99: number;
  readonly rssMiB: number;
  readonly non2xx: number;
  readonly errors: number;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
}

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
}

function post(port: number, request: { headers: Record<string, string>; body: string }): Promise<number> {
  return new Promise((resolve) => {
    const sent = http.request({ host: "127.0.0.1", port, method: "POST", path: "/", headers: request.headers }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    sent.on("error", () => resolve(0));
    sent.end(request.body);
  });
}

let receiverPort = 0;

/** A port nothing listens on now (the kernel picks it), for a server about to start. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Children still running when this process ends (a failed run) are stopped with it. */
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

function startProcess(server: Server, port: number): ChildProcess {
  const env = { PATH: process.env.PATH ?? "", NODE_ENV: "production" };
  const command =
    server === "A" ? [node, `${ROOT}dist/bench/floor.js`]
    : server === "B" ? [node, `${ROOT}node_modules/faas-js-runtime/bin/cli.js`, `${ROOT}bench/faas-function.cjs`, "--port", String(port), "--log-level", "warn"]
    : [node, `${ROOT}dist/handler/servo.cjs`, "serve"];
  const serverEnv =
    server === "ours"
      ? { ...env, PORT: String(port), POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "bench", OPTUNE_URL: `http://127.0.0.1:${receiverPort}/metrics/{acct}/{app_id}/servo`, OPTUNE_DEDUPE: "memory", LOG_LEVEL: "info" }
      : { ...env, PORT: String(port) };
  const [file, ...args] = onCore(0, command);
  const child = spawn(file!, args, { env: serverEnv, stdio: "ignore" });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Spawns a server and resolves at its first 2xx to a real event, with the milliseconds that took. */
async function startServer(server: Server): Promise<{ child: ChildProcess; port: number; coldStartMs: number }> {
  const port = await freePort();
  const event = requestSource("ignored", "binary", "cold")();
  const started = performance.now();
  const child = startProcess(server, port);
  for (;;) {
    const status = await post(port, event);
    if (status >= 200 && status < 300) return { child, port, coldStartMs: performance.now() - started };
    if (child.exitCode !== null) throw new Error(`${server} exited with ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

function load(port: number, config: Config, seconds: number, prefix: string): Promise<{ requests: number; perSecond: number; p50: number; p99: number; non2xx: number; errors: number }> {
  const [file, ...args] = onCore(1, [node, `${ROOT}dist/bench/load.js`, JSON.stringify({ url: `http://127.0.0.1:${port}`, connections: config.connections, seconds, stream: config.stream, mode: config.mode, prefix })]);
  return new Promise((resolve, reject) => {
    const child = spawn(file!, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load exited with ${code}`))));
  });
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function main(): Promise<void> {
  const [receiverFile, ...receiverArgs] = onCore(1, [node, `${ROOT}dist/bench/receiver.js`]);
  const receiver = spawn(receiverFile!, receiverArgs, { stdio: ["ignore", "pipe", "inherit"] });
  children.add(receiver);
  receiverPort = await new Promise<number>((resolve) => receiver.stdout!.once("data", (chunk: Buffer) => resolve((JSON.parse(chunk.toString()) as { port: number }).port)));
  process.stdout.write(`Benchmark${smoke ? " (smoke: too short to mean anything)" : ""}: ${SECONDS} s per run, ${ROUNDS} rounds, ${pinning ? "servers pinned to core 0, load to core 1" : "no pinning (taskset or a second core missing)"}; node ${process.version}\n`);

  // Cold start, interleaved, before the long-running servers exist.
  const cold: Record<Server, number[]> = { A: [], B: [], ours: [] };
  for (let i = 0; i < COLD_STARTS; i++) {
    for (const server of SERVERS) {
      const started = await startServer(server);
      cold[server].push(started.coldStartMs);
      await stop(started.child);
    }
  }

  const servers = {} as Record<Server, { child: ChildProcess; port: number }>;
  for (const server of SERVERS) servers[server] = await startServer(server);
  const results: Record<string, Record<Server, Measured[]>> = {};
  let run = 0;
  for (const config of CONFIGS) {
    const name = configName(config);
    results[name] = { A: [], B: [], ours: [] };
    // Warm up each server on this stream (JIT, and the reported stream's jobs get reported).
    for (const server of SERVERS) await load(servers[server].port, config, smoke ? 1 : 2, `p-${run++}`);
    for (let round = 0; round < ROUNDS; round++) {
      for (const server of SERVERS) {
        const { child, port } = servers[server];
        const before = cpuTicks(child.pid!);
        const measured = await load(port, config, SECONDS, `p-${run++}`);
        const ticks = cpuTicks(child.pid!) - before;
        results[name][server].push({
          perSecond: measured.perSecond,
          cpuMicrosPerRequest: (ticks / TICKS_PER_SECOND) * 1e6 / Math.max(1, measured.requests),
          p50: measured.p50,
          p99: measured.p99,
          rssMiB: rssMiB(child.pid!),
          non2xx: measured.non2xx,
          errors: measured.errors,
        });
      }
    }
  }
  for (const server of SERVERS) await stop(servers[server].child);
  receiver.kill("SIGKILL");

  const pipeline = await pipelineCosts(smoke ? 2000 : 50_000);
  report(cold, results, pipeline);
}

type Summary = { perSecond: number; cpuMicrosPerRequest: number; p50: number; p99: number; rssMiB: number; non2xx: number; errors: number };

function summarize(runs: readonly Measured[]): Summary {
  return {
    perSecond: Math.round(median(runs.map((run) => run.perSecond))),
    cpuMicrosPerRequest: Math.round(median(runs.map((run) => run.cpuMicrosPerRequest)) * 10) / 10,
    p50: median(runs.map((run) => run.p50)),
    p99: median(runs.map((run) => run.p99)),
    rssMiB: Math.round(Math.max(...runs.map((run) => run.rssMiB)) * 10) / 10,
    non2xx: runs.reduce((sum, run) => sum + run.non2xx, 0),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
  };
}

function report(cold: Record<Server, number[]>, results: Record<string, Record<Server, Measured[]>>, pipeline: Awaited<ReturnType<typeof pipelineCosts>>): void {
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const lines: string[] = [];
  const summaries: Record<string, Record<Server, Summary>> = {};
  const targets: Array<{ target: string; value: number; limit: number; pass: boolean }> = [];
  const check = (target: string, value: number, limit: number, atMost = true) => targets.push({ target, value, limit, pass: atMost ? value <= limit : value >= limit });

  for (const [name, byServer] of Object.entries(results)) {
    const summary = { A: summarize(byServer.A), B: summarize(byServer.B), ours: summarize(byServer.ours) };
    summaries[name] = summary;
    lines.push(`\n${name}`);
    lines.push(`  ${"server".padEnd(20)} ${"req/s".padStart(8)} ${"CPU µs/req".padStart(11)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"RSS MiB".padStart(8)}  non-2xx errors`);
    for (const server of SERVERS) {
      const s = summary[server];
      lines.push(`  ${LABEL[server].padEnd(20)} ${String(s.perSecond).padStart(8)} ${s.cpuMicrosPerRequest.toFixed(1).padStart(11)} ${String(s.p50).padStart(7)} ${String(s.p99).padStart(7)} ${s.rssMiB.toFixed(1).padStart(8)}  ${s.non2xx} ${s.errors}`);
    }
    const { A, B, ours } = summary;
    lines.push(`  ours / A: CPU ${ratio(ours.cpuMicrosPerRequest, A.cpuMicrosPerRequest)}×, req/s ${ratio(ours.perSecond, A.perSecond)}×, p99 ${ratio(ours.p99, A.p99)}×, RSS ${ratio(ours.rssMiB, A.rssMiB)}×`);
    lines.push(`  ours / B: CPU ${ratio(ours.cpuMicrosPerRequest, B.cpuMicrosPerRequest)}×, req/s ${ratio(ours.perSecond, B.perSecond)}×   (B / A: CPU ${ratio(B.cpuMicrosPerRequest, A.cpuMicrosPerRequest)}×, req/s ${ratio(B.perSecond, A.perSecond)}×)`);
    const cpuLimit = name.startsWith("reported") ? 1.3 : 1.15;
    if (!name.includes("structured")) check(`CPU/request ${name} ≤ ${cpuLimit}× A`, ratio(ours.cpuMicrosPerRequest, A.cpuMicrosPerRequest), cpuLimit);
    check(`throughput ${name} ≥ 2.5× B`, ratio(ours.perSecond, B.perSecond), 2.5, false);
    check(`p99 ${name} ≤ 1.2× A`, ratio(ours.p99, A.p99), 1.2);
    check(`RSS after load ${name} ≤ 1.2× A`, ratio(ours.rssMiB, A.rssMiB), 1.2);
  }
  const coldMedian = { A: median(cold.A), B: median(cold.B), ours: median(cold.ours) };
  lines.push(`\ncold start, spawn to the first 2xx (median of ${cold.A.length}): A ${coldMedian.A.toFixed(0)} ms, B ${coldMedian.B.toFixed(0)} ms, ours ${coldMedian.ours.toFixed(0)} ms: ours / A ${ratio(coldMedian.ours, coldMedian.A)}×, ours / B ${ratio(coldMedian.ours, coldMedian.B)}×`);
  check("cold start ≤ 1.2× A", ratio(coldMedian.ours, coldMedian.A), 1.2);
  lines.push(
    `in-process, per call: an ignored event (decode, interpret, handle) ${pipeline.ignoredEventMicros.toFixed(2)} µs; a non-job admission (decode, admit) ${pipeline.nonJobAdmissionMicros.toFixed(2)} µs: ${ratio(pipeline.nonJobAdmissionMicros, pipeline.ignoredEventMicros)}×`,
  );
  check("a non-job admission ≤ 1× an ignored event (in-process)", ratio(pipeline.nonJobAdmissionMicros, pipeline.ignoredEventMicros), 1);
  lines.push("\nfor the README:\n");
  lines.push("| stream | A req/s | B req/s | ours req/s | ours CPU / A | ours req/s / B | ours p99 / A | ours RSS / A |", "|---|---|---|---|---|---|---|---|");
  for (const [name, { A, B, ours }] of Object.entries(summaries)) {
    lines.push(`| ${name} | ${A.perSecond} | ${B.perSecond} | ${ours.perSecond} | ${ratio(ours.cpuMicrosPerRequest, A.cpuMicrosPerRequest)}× | ${ratio(ours.perSecond, B.perSecond)}× | ${ratio(ours.p99, A.p99)}× | ${ratio(ours.rssMiB, A.rssMiB)}× |`);
  }
  lines.push("\ntargets:");
  for (const target of targets) lines.push(`  ${target.pass ? "PASS" : "MISS"}  ${target.target}: ${target.value}×`);
  process.stdout.write(`${lines.join("\n")}\n`);

  const folder = `${ROOT}bench-results`;
  mkdirSync(folder, { recursive: true });
  const json = JSON.stringify({ date: new Date().toISOString(), smoke, seconds: SECONDS, rounds: ROUNDS, pinning, node: process.version, cold, coldMedian, results, summaries, pipeline, targets }, null, 2);
  const file = `${folder}/${smoke ? "smoke" : "bench"}-${new Date().toISOString().replaceAll(":", "-")}.json`;
  writeFileSync(file, json);
  writeFileSync(`${folder}/latest${smoke ? "-smoke" : ""}.json`, json);
  process.stdout.write(`\nwritten to ${file.slice(ROOT.length)}\n`);
}

await main();
