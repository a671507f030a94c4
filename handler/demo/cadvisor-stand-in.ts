// A stand-in kubelet and a real Prometheus, for the demo and the tests: the kubelet serves
// /metrics/cadvisor with the real series names and label shapes (the job container, the pause
// sandbox and the pod aggregate without `container`) for the container attempts running now,
// and Debian's `prometheus` scrapes it every second on loopback.
import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { ownChild, ownFolder, releaseFolder } from "./owned.js";

const MiB = 1024 * 1024;

/** A container attempt exposed while it runs: CPU at `rate` cores, memory up to `peak` bytes. */
export interface Attempt {
  readonly pod: string;
  readonly namespace?: string;
  readonly id: string;
  readonly from: number;
  readonly to: number;
  readonly rate: number;
  readonly peak: number;
  /** "zero": container_memory_max_usage_bytes reads 0, as on cgroup v2 before Linux 5.19. */
  readonly maxUsage: "real" | "zero";
}

/** The kubelet's /metrics/cadvisor for the attempts running at `now`, each family's lines together. */
export function cadvisorText(attempts: readonly Attempt[], now: number): string {
  const families: Record<string, string[]> = { container_cpu_usage_seconds_total: [], container_memory_working_set_bytes: [], container_memory_max_usage_bytes: [] };
  for (const attempt of attempts) {
    if (now < attempt.from || now >= attempt.to) continue;
    const elapsed = (now - attempt.from) / 1000;
    // Up to the peak in 1.5 s, held 2 s (longer than a scrape interval, so Prometheus sees it), then down.
    const workingSet = Math.round(elapsed < 1.5 ? (attempt.peak * elapsed) / 1.5 : elapsed < 3.5 ? attempt.peak : attempt.peak * 0.6);
    const base = `namespace="${attempt.namespace ?? "batch"}",pod="${attempt.pod}"`;
    const container = `container="worker",id="/kubepods/burstable/pod-${attempt.pod}/${attempt.id}",image="registry.example.com/worker:1",name="${attempt.id}",${base}`;
    families.container_cpu_usage_seconds_total!.push(`{cpu="total",${container}} ${(attempt.rate * elapsed).toFixed(6)}`);
    families.container_memory_working_set_bytes!.push(`{${container}} ${workingSet}`);
    families.container_memory_max_usage_bytes!.push(`{${container}} ${attempt.maxUsage === "zero" ? 0 : Math.round(attempt.peak * 1.2)}`);
    // The pause sandbox and the pod aggregate: no container label; their values must never be taken.
    families.container_cpu_usage_seconds_total!.push(`{cpu="total",container="",id="/kubepods/burstable/pod-${attempt.pod}/pause-${attempt.id}",image="pause:3.9",name="pause-${attempt.id}",${base}} 999`);
    families.container_memory_working_set_bytes!.push(`{container="",id="/kubepods/burstable/pod-${attempt.pod}-${attempt.id}",image="",name="",${base}} ${50 * 1024 * MiB}`);
  }
  const type = (name: string) => (name.endsWith("_total") ? "counter" : "gauge");
  return `${Object.entries(families).flatMap(([name, lines]) => [`# TYPE ${name} ${type(name)}`, ...lines.map((line) => `${name}${line}`)]).join("\n")}\n`;
}

/** Debian's prometheus: PROMETHEUS, else on PATH; undefined when there is none. */
export function findPrometheus(env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  const candidates = env.PROMETHEUS !== undefined ? [env.PROMETHEUS] : (env.PATH ?? "").split(delimiter).filter((dir) => dir !== "").map((dir) => join(dir, "prometheus"));
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export interface RunningPrometheus {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts `prometheus` on a free loopback port with a 1 s scrape and evaluation interval, these
 * scrape configs (YAML list items) and rule files, in a temp folder of its own; resolves when it is ready.
 */
export async function startPrometheus(binary: string, scrapeConfigs: string, ruleFiles: readonly string[] = []): Promise<RunningPrometheus> {
  const dir = ownFolder(mkdtempSync(join(tmpdir(), "servo-prometheus-")));
  const port = await freePort();
  const rules = ruleFiles.length === 0 ? "" : `rule_files:\n${ruleFiles.map((file) => `  - ${file}\n`).join("")}`;
  writeFileSync(join(dir, "prometheus.yml"), `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n${rules}scrape_configs:\n${scrapeConfigs}`);
  const child = ownChild(spawn(binary, [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=error"], { stdio: "ignore" }));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    releaseFolder(dir);
  };
  try {
    await until(() => fetch(`${url}/-/ready`).then((response) => response.ok), () => child.exitCode !== null, "Prometheus not ready within 30 s");
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

export interface ScrapedKubelet extends RunningPrometheus {
  /** The attempts the kubelet exposes; push to run one. */
  readonly attempts: Attempt[];
}

/**
 * Starts the stand-in kubelet and Prometheus scraping it every second, and resolves once
 * Prometheus has scraped it (it applies new targets a few seconds after it starts).
 */
export async function startScrapedKubelet(binary: string): Promise<ScrapedKubelet> {
  const attempts: Attempt[] = [];
  const kubelet = http.createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    response.end(cadvisorText(attempts, Date.now()));
  });
  await new Promise<void>((resolve) => kubelet.listen(0, "127.0.0.1", resolve));
  const target = `127.0.0.1:${(kubelet.address() as AddressInfo).port}`;
  let prometheus: RunningPrometheus;
  try {
    prometheus = await startPrometheus(binary, `  - job_name: kubelet-cadvisor\n    metrics_path: /metrics/cadvisor\n    static_configs:\n      - targets: ["${target}"]\n`);
  } catch (error) {
    kubelet.close();
    throw error;
  }
  const stop = async () => {
    await prometheus.stop();
    kubelet.close();
  };
  const scraped = async () => {
    const answer = (await (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent('up{job="kubelet-cadvisor"}')}`)).json()) as { data?: { result?: unknown[] } };
    return (answer.data?.result?.length ?? 0) > 0;
  };
  try {
    await until(scraped, () => false, "Prometheus did not start scraping the stand-in kubelet within 30 s");
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: prometheus.url, attempts, stop };
}

/** Polls `ready` every 250 ms for 30 s; a poll that throws counts as not ready. */
async function until(ready: () => Promise<boolean>, gone: () => boolean, message: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await ready().catch(() => false))) {
    if (gone() || Date.now() > deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A TCP port free on loopback now. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
