// `npm run soak`: the real function (`serve`) under a fixed rate of mixed events for a few
// minutes while the Optune stand-in flaps up and down. Events answered 503 are sent again later,
// as a Broker would. At the end: every finished job was delivered exactly once, and the RSS
// figures over time (they must stay flat). SOAK_SECONDS (default 180) and SOAK_RATE (events/s,
// default 200) set the load. Exit 1 on a lost or duplicated job.
import { readFileSync } from "node:fs";
import { startReceiver } from "../handler/demo/optune-stand-in.js";
import { collect, listening, startCli } from "./support/cli.js";
import { jobPod } from "./support/pods.js";
import { podEvent } from "./support/stack.js";

const SECONDS = Number(process.env.SOAK_SECONDS ?? "180");
const RATE = Number(process.env.SOAK_RATE ?? "200");
/** Optune is up for 5 s, then answers 503 for 3 s, and again. */
const up = (ms: number) => ms % 8000 < 5000;

const started = Date.now();
const accepted = new Map<string, number>();
const receiver = await startReceiver((request) => {
  const body = request.body as { event?: string };
  if (body.event !== "MEASUREMENT") return { status: 200, body: "{}" };
  if (!up(Date.now() - started)) return { status: 503, headers: { "Retry-After": "1" }, body: "{}" };
  const uid = String(request.headers["idempotency-key"]);
  accepted.set(uid, (accepted.get(uid) ?? 0) + 1);
  return { status: 200, body: "{}" };
});
receiver.requests.length = 0;

const child = startCli(["serve"], { PORT: "0", OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "soak", POD_NAMESPACES: "batch", OPTUNE_DEDUPE: "memory", OPTUNE_SEND_DEADLINE: "2", LOG_LEVEL: "info" });
const done = collect(child);
const url = `http://127.0.0.1:${await listening(child)}/`;
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

const jobs = new Set<string>();
const retry: Array<{ body: string; at: number }> = [];
const samples: Array<{ second: number; rssMiB: number }> = [];
let sent = 0;
let answered503 = 0;
let sequence = 0;

async function post(body: string): Promise<void> {
  sent++;
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/cloudevents+json" }, body }).catch(() => undefined);
  if (response === undefined || response.status === 503) {
    answered503++;
    retry.push({ body, at: Date.now() + 1500 });
  } else await response.arrayBuffer();
}

function nextEvent(): string {
  const n = ++sequence;
  const kind = n % 10;
  // 10 % finished jobs with unique uids; the rest: other namespaces, no app id, still running, or a repeat of a finished job.
  if (kind === 0) {
    jobs.add(`soak-${n}`);
    return JSON.stringify(podEvent(jobPod({ uid: `soak-${n}`, name: `job-${n}` })));
  }
  if (kind <= 3) return JSON.stringify(podEvent(jobPod({ uid: `soak-${n}`, name: `job-${n}`, running: true })));
  if (kind <= 6) return JSON.stringify(podEvent(jobPod({ uid: `soak-${n}`, namespace: "web" })));
  if (kind <= 8) return JSON.stringify(podEvent(jobPod({ uid: `soak-${n}`, jobId: null })));
  return JSON.stringify(podEvent(jobs.has(`soak-${n - 9}`) ? jobPod({ uid: `soak-${n - 9}`, name: `job-${n - 9}` }) : jobPod({ uid: `soak-${n}`, running: true })));
}

const inFlight = new Set<Promise<void>>();
const track = (work: Promise<void>) => {
  inFlight.add(work);
  void work.finally(() => inFlight.delete(work));
};
const tick = 1000 / RATE;
let next = Date.now();
while (Date.now() - started < SECONDS * 1000) {
  const second = Math.floor((Date.now() - started) / 1000);
  if (second % 5 === 0 && samples.at(-1)?.second !== second) samples.push({ second, rssMiB: Math.round(rss() * 10) / 10 });
  track(post(nextEvent()));
  while (retry.length > 0 && retry[0]!.at <= Date.now()) track(post(retry.shift()!.body));
  next += tick;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
}
// Drain: keep resending what was refused until Optune has everything (it is up at least 5 s of every 8).
const drainUntil = Date.now() + 60_000;
while ((retry.length > 0 || inFlight.size > 0) && Date.now() < drainUntil) {
  while (retry.length > 0 && retry[0]!.at <= Date.now()) track(post(retry.shift()!.body));
  await new Promise((resolve) => setTimeout(resolve, 50));
}
samples.push({ second: Math.round((Date.now() - started) / 1000), rssMiB: Math.round(rss() * 10) / 10 });
child.kill("SIGTERM");
const exit = await done;
await receiver.close();

const missing = [...jobs].filter((uid) => !accepted.has(uid));
const duplicated = [...accepted].filter(([, count]) => count > 1);
const firstMinute = samples.filter((sample) => sample.second >= 10 && sample.second <= 60).map((sample) => sample.rssMiB);
const last = samples.slice(-6).map((sample) => sample.rssMiB);
const report = {
  seconds: SECONDS,
  rate: RATE,
  eventsSent: sent,
  answered503,
  finishedJobs: jobs.size,
  deliveredOnce: [...accepted.values()].filter((count) => count === 1).length,
  missing: missing.length,
  duplicated: duplicated.length,
  rssMiB: { min: Math.min(...samples.map((s) => s.rssMiB)), max: Math.max(...samples.map((s) => s.rssMiB)), firstMinuteMax: Math.max(...firstMinute, 0), lastSamples: last },
  exitCode: exit.code,
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
process.exitCode = missing.length === 0 && duplicated.length === 0 && exit.code === 0 ? 0 : 1;
