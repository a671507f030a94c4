// `npm run bench`: the function against its floors, in one run, interleaved over rounds. Servers
// are pinned to one core, the load (autocannon, in its own process) and the stand-ins (Optune;
// Kubernetes over TLS with a bearer token) to the other, when taskset is there.
//   A   a bare node:http server that only parses the body (bench/floor.ts); B Knative's
//       faas-js-runtime doing the same; A′ A plus one keep-alive POST of the MEASUREMENT for a
//       finished job seen first; A″ A′ plus the claim's two PATCHes to the Kubernetes stand-in.
//   ours: the bundle with memory dedupe; prod: the bundle as deployed (OPTUNE_DEDUPE=annotation
//       against the Kubernetes stand-in); W, W1: bare node:https webhook floors (W1 asks Optune
//       once for a job pod); webhook, webhook-prod: ours (prod also lists LimitRanges and
//       ResourceQuotas, as in a cluster).
// Reported per server and stream: requests per second, server CPU per request (from /proc),
// p50/p99 latency in µs, RSS after load; cold start (spawn to the first 2xx, median of 10); the
// ratios to the stream's fair floor and to B, and the targets. `--smoke` runs each part briefly
// (CI, so the benchmark cannot rot); its figures mean nothing. BENCH_PROF=DIR writes a --cpu-prof
// of every server (DIR/SERVER/), the floors too.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { requestSource, type Mode, type Stream } from "./events.js";
import { kubeClientCosts, type ClientCosts } from "./kube-client.js";
import { pipelineCosts } from "./pipeline.js";

const smoke = process.argv.includes("--smoke");
const SECONDS = smoke ? 1 : Number(process.env.BENCH_SECONDS ?? "5");
const ROUNDS = smoke ? 1 : Number(process.env.BENCH_ROUNDS ?? "3");
const COLD_STARTS = smoke ? 2 : 10;
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const node = process.execPath;

/**
 * Ours runs as the image runs it: the Node flags of the Dockerfile's ENTRYPOINT (between `node` and
 * the bundle), and the benchmark should run on the image's Node major (its FROM node:MAJOR).
 */
const IMAGE = (() => {
  const dockerfile = readFileSync(`${ROOT}Dockerfile`, "utf8");
  const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] ?? "[]") as string[];
  const major = [...dockerfile.matchAll(/^FROM node:(\d+)/gm)].at(-1)?.[1];
  return { nodeFlags: entrypoint.slice(1, entrypoint.findIndex((part) => part.endsWith("servo.cjs"))), nodeMajor: major };
})();

const pinning = availableParallelism() >= 2 && spawnSync("taskset", ["-V"]).status === 0;
const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim() || "100");
/** Servers on core 0; this process, the load and the Optune stand-in on core 1. */
const onCore = (core: number, command: string[]): string[] => (pinning ? ["taskset", "-c", String(core), ...command] : command);
if (pinning) execFileSync("taskset", ["-p", "-c", "1", String(process.pid)], { stdio: "ignore" });

type Server = "A" | "A1" | "A2" | "B" | "ours" | "prod" | "W" | "W1" | "webhook" | "webhook-prod";
const COLD: readonly Server[] = ["A", "B", "ours"];
const LABEL: Record<Server, string> = {
  A: "A node:http floor",
  A1: "A′ floor + POST",
  A2: "A″ A′ + 2 PATCHes",
  B: "B faas-js-runtime",
  ours: "ours (memory)",
  prod: "ours (annotation)",
  W: "W https floor",
  W1: "W1 W + WHATS_NEXT",
  webhook: "ours webhook",
  "webhook-prod": "ours webhook + cluster",
};
const HTTPS: ReadonlySet<Server> = new Set(["W", "W1", "webhook", "webhook-prod"]);

interface Config {
  readonly stream: Stream;
  readonly connections: number;
  readonly mode: Mode;
  /** The servers run on it, the fair floor first. */
  readonly servers: readonly Server[];
  readonly name: string;
}
const config = (stream: Stream, connections: number, servers: readonly Server[], name = `${stream}@${connections}`, mode: Mode = "binary"): Config => ({ stream, connections, mode, servers, name });
const only = process.env.BENCH_CONFIGS?.split(",").map((text) => text.trim());
const ALL: readonly Config[] = smoke
  ? [config("mix", 16, ["A1", "A", "B", "ours"]), config("mix", 16, ["A2", "prod"], "production mix@16"), config("admit-job", 16, ["W1", "webhook-prod"], "job admissions@16")]
  : [
      config("mix", 16, ["A1", "A", "B", "ours"]),
      config("mix", 64, ["A1", "A", "B", "ours"]),
      config("reported", 16, ["A", "B", "ours"]),
      config("reported", 64, ["A", "B", "ours"]),
      config("mix", 16, ["A1", "A", "B", "ours"], "mix@16 structured", "structured"),
      config("mix", 16, ["A2", "prod"], "production mix@16"),
      config("mix", 64, ["A2", "prod"], "production mix@64"),
      config("reported", 16, ["A", "prod"], "production reported@16"),
      config("admit-nonjob", 16, ["W", "webhook-prod"], "non-job admissions@16"),
      config("admit-job", 16, ["W1", "webhook", "webhook-prod"], "job admissions@16"),
    ];
// Not run by default: the cost of a report alone (every event a finished job never seen), to find where a stream's time goes.
const DIAGNOSTIC: readonly Config[] = [config("sent", 16, ["A1", "ours"]), config("sent", 16, ["A2", "prod"], "production sent@16"), config("sent", 64, ["A2", "prod"], "production sent@64")];
const CONFIGS = only === undefined ? ALL : [...ALL, ...DIAGNOSTIC].filter((candidate) => only.includes(candidate.name));
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

function post(server: Server, port: number, request: { headers: Record<string, string>; body: string }): Promise<number> {
  return new Promise((resolve) => {
    const options = { host: "127.0.0.1", port, method: "POST", path: HTTPS.has(server) ? "/mutate" : "/", headers: request.headers, rejectUnauthorized: false };
    const sent = (HTTPS.has(server) ? https : http).request(options, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    sent.on("error", () => resolve(0));
    sent.end(request.body);
  });
}

/** What the servers reach: the Optune stand-in's port, the Kubernetes stand-in's kubeconfig, the TLS pair. */
interface World {
  readonly receiverPort: number;
  readonly kube: { readonly url: string; readonly token: string; readonly caFile: string; readonly kubeconfig: string };
  readonly tls: { readonly cert: string; readonly key: string };
  readonly profiles?: string;
}
let world: World;

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
  const optuneUrl = `http://127.0.0.1:${world.receiverPort}/metrics/{acct}/{app_id}/servo`;
  const floorUrl = `http://127.0.0.1:${world.receiverPort}/metrics/bench/{app_id}/servo`;
  const profile = world.profiles !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${world.profiles}/${server}`] : [];
  const servo = (command: string) => [node, ...IMAGE.nodeFlags, `${ROOT}dist/handler/servo.cjs`, command];
  // BENCH_OUR_ENV='{"LOG_LEVEL":"warn"}' adds to ours' environment: what a setting costs.
  const ourEnv = { ...env, POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "bench", OPTUNE_URL: optuneUrl, LOG_LEVEL: "info", ...(JSON.parse(process.env.BENCH_OUR_ENV ?? "{}") as Record<string, string>) };
  const webhookEnv = { WEBHOOK_PORT: String(port), WEBHOOK_TLS_CERT_FILE: world.tls.cert, WEBHOOK_TLS_KEY_FILE: world.tls.key };
  const kubeFloor = { KUBE_URL: world.kube.url, KUBE_TOKEN: world.kube.token, KUBE_CA_FILE: world.kube.caFile };
  const spec: Record<Server, { command: string[]; env: Record<string, string> }> = {
    A: { command: [node, `${ROOT}dist/bench/floor.js`], env: { ...env, PORT: String(port) } },
    A1: { command: [node, `${ROOT}dist/bench/floor.js`], env: { ...env, PORT: String(port), FLOOR: "A1", OPTUNE_URL: floorUrl } },
    A2: { command: [node, `${ROOT}dist/bench/floor.js`], env: { ...env, PORT: String(port), FLOOR: "A2", OPTUNE_URL: floorUrl, ...kubeFloor } },
    B: { command: [node, `${ROOT}node_modules/faas-js-runtime/bin/cli.js`, `${ROOT}bench/faas-function.cjs`, "--port", String(port), "--log-level", "warn"], env: { ...env, PORT: String(port) } },
    ours: { command: servo("serve"), env: { ...ourEnv, PORT: String(port), OPTUNE_DEDUPE: "memory" } },
    prod: { command: servo("serve"), env: { ...ourEnv, PORT: String(port), OPTUNE_DEDUPE: "annotation", KUBECONFIG: world.kube.kubeconfig } },
    W: { command: [node, `${ROOT}dist/bench/webhook-floor.js`], env: { ...env, ...webhookEnv } },
    W1: { command: [node, `${ROOT}dist/bench/webhook-floor.js`], env: { ...env, ...webhookEnv, WFLOOR: "W1", OPTUNE_URL: floorUrl } },
    webhook: { command: servo("webhook"), env: { ...ourEnv, ...webhookEnv } },
    "webhook-prod": { command: servo("webhook"), env: { ...ourEnv, ...webhookEnv, KUBECONFIG: world.kube.kubeconfig } },
  };
  const [executable, ...rest] = spec[server].command;
  const [file, ...args] = onCore(0, [executable!, ...profile, ...rest]);
  const child = spawn(file!, args, { env: spec[server].env, stdio: "ignore" });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Spawns a server and resolves at its first 2xx to a real event (or admission), with the milliseconds that took. */
async function startServer(server: Server): Promise<{ child: ChildProcess; port: number; coldStartMs: number }> {
  const port = await freePort();
  const event = requestSource(HTTPS.has(server) ? "admit-nonjob" : "ignored", "binary", "cold")();
  const started = performance.now();
  const child = startProcess(server, port);
  for (;;) {
    const status = await post(server, port, event);
    if (status >= 200 && status < 300) return { child, port, coldStartMs: performance.now() - started };
    if (child.exitCode !== null) throw new Error(`${server} exited with ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** SIGTERM where a profile must be written (the process writes it as it exits), else SIGKILL. */
function stop(child: ChildProcess, gently = false): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill(gently ? "SIGTERM" : "SIGKILL");
  });
}

function load(server: Server, port: number, config: Config, seconds: number, prefix: string): Promise<{ requests: number; perSecond: number; p50: number; p99: number; non2xx: number; errors: number }> {
  const target = { url: `${HTTPS.has(server) ? "https" : "http"}://127.0.0.1:${port}`, path: HTTPS.has(server) ? "/mutate" : "/", connections: config.connections, seconds, stream: config.stream, mode: config.mode, prefix };
  const [file, ...args] = onCore(1, [node, `${ROOT}dist/bench/load.js`, JSON.stringify(target)]);
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

/** What a stand-in has counted so far (it prints its counts on SIGUSR2). */
function countsOf(child: ChildProcess): Promise<Record<string, number>> {
  const counted = new Promise<Record<string, number>>((resolve) => child.stdout!.once("data", (chunk: Buffer) => resolve(JSON.parse(chunk.toString()) as Record<string, number>)));
  child.kill("SIGUSR2");
  return counted;
}

/** A stand-in in its own process on the load's core; resolves with its first stdout line. */
async function standIn(script: string, args: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const [file, ...rest] = onCore(1, [node, `${ROOT}dist/bench/${script}`, ...args]);
  const child = spawn(file!, rest, { stdio: ["ignore", "pipe", "inherit"] });
  children.add(child);
  const port = await new Promise<number>((resolve) => child.stdout!.once("data", (chunk: Buffer) => resolve((JSON.parse(chunk.toString()) as { port: number }).port)));
  return { child, port };
}

/** A certificate for 127.0.0.1 (the webhooks' and the Kubernetes stand-in's), a token and a kubeconfig, in a temp folder. */
async function makeWorld(receiverPort: number): Promise<{ world: Omit<World, "kube"> & { kubeTls: { cert: string; key: string; token: string } }; folder: string }> {
  const folder = mkdtempSync(join(tmpdir(), "servo-bench-"));
  const { generate } = await import("selfsigned");
  const pair = await generate([{ name: "commonName", value: "127.0.0.1" }], { keySize: 2048, extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }] });
  writeFileSync(join(folder, "tls.crt"), pair.cert);
  writeFileSync(join(folder, "tls.key"), pair.private);
  const profiles = process.env.BENCH_PROF;
  return { folder, world: { receiverPort, tls: { cert: join(folder, "tls.crt"), key: join(folder, "tls.key") }, kubeTls: { cert: join(folder, "tls.crt"), key: join(folder, "tls.key"), token: "bench-service-account-token" }, ...(profiles === undefined ? {} : { profiles }) } };
}

function kubeconfig(folder: string, url: string, token: string, caFile: string): string {
  const file = join(folder, "kubeconfig");
  const ca = Buffer.from(readFileSync(caFile)).toString("base64");
  writeFileSync(file, `apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    server: ${url}\n    certificate-authority-data: ${ca}\nusers:\n- name: bench\n  user:\n    token: ${token}\ncontexts:\n- name: bench\n  context:\n    cluster: bench\n    user: bench\ncurrent-context: bench\n`);
  return file;
}

async function main(): Promise<void> {
  const receiver = await standIn("receiver.js");
  const made = await makeWorld(receiver.port);
  const kube = await standIn("kube-stand-in.js", [JSON.stringify(made.world.kubeTls)]);
  const kubeUrl = `https://127.0.0.1:${kube.port}`;
  world = { ...made.world, kube: { url: kubeUrl, token: made.world.kubeTls.token, caFile: made.world.kubeTls.cert, kubeconfig: kubeconfig(made.folder, kubeUrl, made.world.kubeTls.token, made.world.kubeTls.cert) } };
  process.stdout.write(`Benchmark${smoke ? " (smoke: too short to mean anything)" : ""}: ${SECONDS} s per run, ${ROUNDS} rounds, ${pinning ? "servers pinned to core 0, load and stand-ins to core 1" : "no pinning (taskset or a second core missing)"}; node ${process.version}, ours with ${IMAGE.nodeFlags.join(" ") || "no flags"} (the image's); ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores\n`);
  if (IMAGE.nodeMajor !== undefined && process.versions.node.split(".")[0] !== IMAGE.nodeMajor) {
    process.stdout.write(`warning: the image runs Node ${IMAGE.nodeMajor}, this is Node ${process.versions.node}: \`npm run bench\` runs it on the image's\n`);
  }

  // Cold start, interleaved, before the long-running servers exist.
  const cold: Partial<Record<Server, number[]>> = {};
  for (let i = 0; i < COLD_STARTS; i++) {
    for (const server of COLD) {
      const started = await startServer(server);
      (cold[server] ??= []).push(started.coldStartMs);
      await stop(started.child);
    }
  }

  const results: Record<string, Partial<Record<Server, Measured[]>>> = {};
  const writes = { patches: 0, reported: 0 };
  let run = 0;
  for (const config of CONFIGS) {
    // Fresh servers for each stream, started together: no stream inherits another's heap.
    const servers = {} as Record<Server, { child: ChildProcess; port: number }>;
    for (const server of config.servers) servers[server] = await startServer(server);
    results[config.name] = {};
    // Warm up each server on this stream (JIT, and the reported stream's jobs get reported).
    for (const server of config.servers) await load(server, servers[server].port, config, smoke ? 1 : 2, `p-${run++}`);
    for (let round = 0; round < ROUNDS; round++) {
      for (const server of config.servers) {
        const { child, port } = servers[server];
        // The production path's API writes per reported job: PATCHes to the Kubernetes stand-in per MEASUREMENT Optune got.
        const counted = server === "prod" ? await Promise.all([countsOf(kube.child), countsOf(receiver.child)]) : undefined;
        const before = cpuTicks(child.pid!);
        const measured = await load(server, port, config, SECONDS, `p-${run++}`);
        const ticks = cpuTicks(child.pid!) - before;
        if (counted !== undefined) {
          const [kubeAfter, receivedAfter] = await Promise.all([countsOf(kube.child), countsOf(receiver.child)]);
          writes.patches += (kubeAfter["PATCH pods"] ?? 0) - (counted[0]["PATCH pods"] ?? 0);
          writes.reported += (receivedAfter.received ?? 0) - (counted[1].received ?? 0);
        }
        (results[config.name]![server] ??= []).push({
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
    for (const server of config.servers) await stop(servers[server].child, world.profiles !== undefined);
  }
  const client = await kubeClientCosts(world.kube.kubeconfig, smoke ? 200 : 3000);
  receiver.child.kill("SIGKILL");
  kube.child.kill("SIGKILL");
  rmSync(made.folder, { recursive: true, force: true });

  const pipeline = await pipelineCosts(smoke ? 2000 : 50_000);
  report(cold, results, { ...pipeline, ...client }, writes);
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

function report(cold: Partial<Record<Server, number[]>>, results: Record<string, Partial<Record<Server, Measured[]>>>, pipeline: Awaited<ReturnType<typeof pipelineCosts>> & ClientCosts, writes: { readonly patches: number; readonly reported: number }): void {
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const lines: string[] = [];
  const summaries: Record<string, Partial<Record<Server, Summary>>> = {};
  const targets: Array<{ target: string; value: number; limit: number; pass: boolean }> = [];
  const check = (target: string, value: number, limit: number, atMost = true) => targets.push({ target, value, limit, pass: atMost ? value <= limit : value >= limit });
  const table: string[] = [];

  for (const [name, byServer] of Object.entries(results)) {
    const summary: Partial<Record<Server, Summary>> = {};
    for (const [server, runs] of Object.entries(byServer) as Array<[Server, Measured[]]>) summary[server] = summarize(runs);
    summaries[name] = summary;
    lines.push(`\n${name}`);
    lines.push(`  ${"server".padEnd(22)} ${"req/s".padStart(8)} ${"CPU µs/req".padStart(11)} ${"p50 µs".padStart(7)} ${"p99 µs".padStart(7)} ${"RSS MiB".padStart(8)}  non-2xx errors`);
    for (const [server, s] of Object.entries(summary) as Array<[Server, Summary]>) {
      lines.push(`  ${LABEL[server].padEnd(22)} ${String(s.perSecond).padStart(8)} ${s.cpuMicrosPerRequest.toFixed(1).padStart(11)} ${String(s.p50).padStart(7)} ${String(s.p99).padStart(7)} ${s.rssMiB.toFixed(1).padStart(8)}  ${s.non2xx} ${s.errors}`);
    }
  }
  // The targets, each against the fair floor of its stream (the same work with the least code).
  const mixOf = (name: string) => summaries[name.replace("production ", "").replace(/ structured$/, "")];
  for (const [name, summary] of Object.entries(summaries)) {
    const admissions = name.includes("admissions");
    const ourServer: Server = admissions ? "webhook-prod" : name.startsWith("production") ? "prod" : "ours";
    const ours = summary[ourServer]!;
    const floorServer: Server = admissions ? (name.startsWith("job") ? "W1" : "W") : name.startsWith("production") ? (name.includes("reported") ? "A" : "A2") : name.startsWith("mix") || name.startsWith("sent") ? "A1" : "A";
    const floor = summary[floorServer]!;
    const A = summary.A ?? mixOf(name)?.A ?? summaries[name.replace("production ", "")]?.A;
    const B = summary.B ?? mixOf(name)?.B ?? summaries[name.replace("production ", "")]?.B;
    const cpu = ratio(ours.cpuMicrosPerRequest, floor.cpuMicrosPerRequest);
    lines.push(`\n${name}: ${LABEL[ourServer]} / ${LABEL[floorServer]}: CPU ${cpu}×, p99 ${ratio(ours.p99, floor.p99)}×` + (A === undefined ? "" : `, RSS / A ${ratio(ours.rssMiB, A.rssMiB)}×`) + (B === undefined ? "" : `, req/s / B ${ratio(ours.perSecond, B.perSecond)}×`));
    // The targets of "Fast on the production path, round two": CPU ≤ 1.25× the fair floor on every
    // function stream, RSS ≤ 1.3× A (the webhook's against W, its bare floor), job admissions
    // ≤ 1.5× W1 in CPU and p99, non-job admissions ≤ 1.1× W in CPU and p99.
    const webhookFloor = summary.W ?? summaries["non-job admissions@16"]?.W;
    if (!admissions) check(`CPU/request ${name} ≤ 1.25× ${floorServer}`, cpu, 1.25);
    else {
      const limit = name.startsWith("job") ? 1.5 : 1.1;
      check(`CPU/request ${name} ≤ ${limit}× ${floorServer}`, cpu, limit);
      check(`p99 ${name} ≤ ${limit}× ${floorServer}`, ratio(ours.p99, floor.p99), limit);
    }
    if (!admissions && A !== undefined) check(`RSS after load ${name} ≤ 1.3× A`, ratio(ours.rssMiB, A.rssMiB), 1.3);
    if (admissions && webhookFloor !== undefined) {
      lines.push(`  RSS after load: ${LABEL[ourServer]} ${ours.rssMiB} MiB, ${LABEL.W} ${webhookFloor.rssMiB} MiB${summary.webhook === undefined ? "" : `, ${LABEL.webhook} ${summary.webhook.rssMiB} MiB`}`);
      check(`RSS after load ${name} (webhook with a cluster) ≤ 1.3× W`, ratio(ours.rssMiB, webhookFloor.rssMiB), 1.3);
    }
    table.push(`| ${name} | ${LABEL[floorServer]} | ${floor.perSecond} | ${ours.perSecond} | ${cpu}× | ${B === undefined ? "–" : `${ratio(ours.perSecond, B.perSecond)}×`} | ${floor.p99} / ${ours.p99} µs (${ratio(ours.p99, floor.p99)}×) | ${A === undefined ? "–" : `${ratio(ours.rssMiB, A.rssMiB)}×`} |`);
    if (name.startsWith("job") && summary.webhook !== undefined) {
      lines.push(`  a cluster (LimitRanges and ResourceQuotas from the watch; LISTs until it is in sync): ${(ours.cpuMicrosPerRequest - summary.webhook.cpuMicrosPerRequest).toFixed(1)} µs of CPU per job admission (webhook-prod ${ours.cpuMicrosPerRequest} µs, without a cluster ${summary.webhook.cpuMicrosPerRequest} µs)`);
    }
  }
  const coldMedian = Object.fromEntries(Object.entries(cold).map(([server, values]) => [server, median(values!)])) as Partial<Record<Server, number>>;
  lines.push(`\ncold start, spawn to the first 2xx (median of ${cold.A?.length ?? 0}): A ${coldMedian.A?.toFixed(0)} ms, B ${coldMedian.B?.toFixed(0)} ms, ours ${coldMedian.ours?.toFixed(0)} ms: ours / A ${ratio(coldMedian.ours!, coldMedian.A!)}×, ours / B ${ratio(coldMedian.ours!, coldMedian.B!)}×`);
  check("cold start ≤ 1.15× A", ratio(coldMedian.ours!, coldMedian.A!), 1.15);
  lines.push(
    `in-process, per call: an ignored event (decode, interpret, handle) ${pipeline.ignoredEventMicros.toFixed(2)} µs; a non-job admission (decode, admit) ${pipeline.nonJobAdmissionMicros.toFixed(2)} µs: ${ratio(pipeline.nonJobAdmissionMicros, pipeline.ignoredEventMicros)}×`,
  );
  lines.push(
    `the Kubernetes request path, CPU per call in-process: a pod PATCH ${pipeline.clientPatchMicros} µs through our edge (the client's auth, node:https), ${pipeline.httpsPatchMicros} µs with bare node:https and the same options (${ratio(pipeline.clientPatchMicros, pipeline.httpsPatchMicros)}×), ${pipeline.clientPatchUnparsedMicros} µs with the answer not parsed (the sent mark); the two policy LISTs ${pipeline.clientListMicros} µs, ${pipeline.httpsListMicros} µs (${ratio(pipeline.clientListMicros, pipeline.httpsListMicros)}×)`,
  );
  const perJob = writes.reported === 0 ? Infinity : Math.round((writes.patches / writes.reported) * 100) / 100;
  lines.push(`the production path's API writes: ${writes.patches} pod PATCHes for ${writes.reported} MEASUREMENTs Optune got: ${perJob} per reported job (the claim, and the sent mark that also lets a held pod go)`);
  check("API writes per reported job ≤ 2 (production path)", perJob, 2);
  check("a non-job admission ≤ 1× an ignored event (in-process)", ratio(pipeline.nonJobAdmissionMicros, pipeline.ignoredEventMicros), 1);
  lines.push("\nfor the README:\n");
  lines.push("| stream | fair floor | floor req/s | ours req/s | ours CPU / floor | ours req/s / B | p99 floor / ours | ours RSS / A |", "|---|---|---|---|---|---|---|---|", ...table);
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
