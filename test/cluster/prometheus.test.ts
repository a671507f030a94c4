// Each run's CPU seconds and peak memory from a real Prometheus (Debian's 2.42), scraping every
// second a stand-in kubelet that serves cAdvisor series with the real names and label shapes (the
// job container, the pause sandbox and the pod aggregate without `container`) whose values move
// while the test jobs run. Then Prometheus failing every way: the MEASUREMENT still goes.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connectPrometheus } from "../../handler/edges/prometheus.js";
import { resourceReader, type ResourceUsage } from "../../handler/measure/resources.js";
import type { Pod } from "../../handler/jobs/pod.js";
import { podEvent, startStack } from "../support/stack.js";

const PROMETHEUS = process.env.PROMETHEUS ?? "/usr/bin/prometheus";
const missing = existsSync(PROMETHEUS) ? undefined : `${PROMETHEUS} not found: run test/cluster/install.sh (Debian's prometheus package)`;
if (missing !== undefined && process.env.REQUIRE_CLUSTER === "1") throw new Error(`REQUIRE_CLUSTER=1, but ${missing}`);
const skip = missing === undefined ? false : `the real Prometheus tier: ${missing}`;

const MiB = 1024 * 1024;
const SCRAPE_MS = 1000;
const rfc3339 = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");

/** A container attempt the stand-in kubelet exposes while it runs: CPU at `rate` cores, memory up to `peak`. */
interface Attempt {
  readonly pod: string;
  readonly id: string;
  readonly from: number;
  readonly to: number;
  readonly rate: number;
  readonly peak: number;
  readonly maxUsage: "real" | "zero";
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The kubelet's /metrics/cadvisor, for the attempts running now: each family's lines together, as the format wants. */
function cadvisor(attempts: readonly Attempt[], now: number): string {
  const families: Record<string, string[]> = { container_cpu_usage_seconds_total: [], container_memory_working_set_bytes: [], container_memory_max_usage_bytes: [] };
  for (const attempt of attempts) {
    if (now < attempt.from || now >= attempt.to) continue;
    const elapsed = (now - attempt.from) / 1000;
    // Up to the peak in 1.5 s, held 2 s (longer than a scrape interval, so Prometheus sees it), then down.
    const workingSet = Math.round(elapsed < 1.5 ? (attempt.peak * elapsed) / 1.5 : elapsed < 3.5 ? attempt.peak : attempt.peak * 0.6);
    const base = `namespace="batch",pod="${attempt.pod}"`;
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

/** The finished pod as the API server has it, for the attempt reported. */
function finishedPod(name: string, attempt: Attempt, restartPolicy = "Never", restarts = 0): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "batch", uid: `uid-${name}`, resourceVersion: "1", creationTimestamp: rfc3339(attempt.from - 2000) },
    spec: { restartPolicy, containers: [{ name: "worker", env: [{ name: "JOBID", value: "resize-images" }] }] },
    status: {
      phase: "Succeeded",
      containerStatuses: [{ name: "worker", restartCount: restarts, state: { terminated: { exitCode: 0, reason: "Completed", startedAt: rfc3339(attempt.from), finishedAt: rfc3339(attempt.to), containerID: `containerd://${attempt.id}` } } }],
    },
  } as Pod;
}

describe("resource usage from a real Prometheus", { skip }, () => {
  let prometheus: ChildProcess;
  let url: string;
  let kubelet: http.Server;
  let dir: string;
  const attempts: Attempt[] = [];
  const usage: Record<string, ResourceUsage | undefined> = {};
  const hex = (seed: number) => seed.toString(16).padStart(2, "0").repeat(32);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "real-prometheus-"));
    kubelet = http.createServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      response.end(cadvisor(attempts, Date.now()));
    });
    await new Promise<void>((resolve) => kubelet.listen(0, "127.0.0.1", resolve));
    const port = await freePort();
    writeFileSync(join(dir, "prometheus.yml"), `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: kubelet-cadvisor\n    metrics_path: /metrics/cadvisor\n    static_configs:\n      - targets: ["127.0.0.1:${(kubelet.address() as AddressInfo).port}"]\n`);
    prometheus = spawn(PROMETHEUS, [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=error"], { stdio: "ignore" });
    url = `http://127.0.0.1:${port}`;
    for (let tries = 0; ; tries++) {
      const ready = await fetch(`${url}/-/ready`).then((response) => response.ok).catch(() => false);
      if (ready) break;
      if (tries > 120) throw new Error("Prometheus not ready within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }

    // Prometheus applies new targets a few seconds after it starts: wait for its first scrape of the kubelet.
    for (let tries = 0; ; tries++) {
      const up = await fetch(`${url}/api/v1/query?query=${encodeURIComponent('up{job="kubelet-cadvisor"}')}`).then((response) => response.json() as Promise<{ data?: { result?: unknown[] } }>).catch(() => ({ data: { result: [] } }));
      if ((up.data?.result?.length ?? 0) > 0) break;
      if (tries > 120) throw new Error("Prometheus never scraped the stand-in kubelet");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // The jobs, run for real time on the stand-in kubelet: start on a whole second (the kubelet truncates timestamps).
    const t0 = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    attempts.push(
      { pod: "long", id: hex(1), from: t0, to: t0 + 6000, rate: 0.5, peak: 100 * MiB, maxUsage: "real" },
      { pod: "cgroup2", id: hex(2), from: t0, to: t0 + 6000, rate: 0.25, peak: 80 * MiB, maxUsage: "zero" },
      { pod: "restarted", id: hex(3), from: t0, to: t0 + 2000, rate: 1, peak: 300 * MiB, maxUsage: "zero" },
      { pod: "restarted", id: hex(4), from: t0 + 2000, to: t0 + 6000, rate: 0.5, peak: 40 * MiB, maxUsage: "zero" },
    );
    await new Promise((resolve) => setTimeout(resolve, t0 + 6000 + 3 * SCRAPE_MS - Date.now()));
    const read = resourceReader({ query: connectPrometheus({ url, timeoutMs: 5000, scrapeIntervalMs: SCRAPE_MS }), timeoutMs: 5000, scrapeIntervalMs: SCRAPE_MS, warn: () => {} });
    usage.long = await read(finishedPod("long", attempts[0]!), false);
    usage.cgroup2 = await read(finishedPod("cgroup2", attempts[1]!), false);
    usage.restarted = await read(finishedPod("restarted", attempts[3]!, "OnFailure", 1), false);
    // Shorter than one scrape: the kubelet never exposed it.
    usage.short = await read(finishedPod("short", { pod: "short", id: hex(5), from: t0 + 1000, to: t0 + 1000, rate: 1, peak: MiB, maxUsage: "real" }), false);
  });
  after(async () => {
    prometheus?.kill("SIGTERM");
    kubelet?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test("a job of a few scrape intervals: CPU within one interval's worth of the truth, peak memory exact (max_usage)", () => {
    const { metrics, annotations } = usage.long!;
    const truth = 0.5 * 6; // 0.5 cores for 6 s
    assert.ok(Math.abs(metrics.cpu_time!.value - truth) <= 0.5 * (SCRAPE_MS / 1000), `cpu_time ${metrics.cpu_time!.value} s, truth ${truth} s`);
    assert.deepEqual(metrics.max_memory, { value: 120 * MiB, unit: "bytes" });
    assert.equal(annotations.max_memory_source, "container_memory_max_usage_bytes");
    assert.ok(Number(annotations.resource_samples) >= 4, JSON.stringify(annotations));
  });

  test("max_usage 0 (cgroup v2 before kernel 5.19): the peak working set, exact", () => {
    assert.deepEqual(usage.cgroup2!.metrics.max_memory, { value: 80 * MiB, unit: "bytes" });
    assert.equal(usage.cgroup2!.annotations.max_memory_source, "container_memory_working_set_bytes");
  });

  test("a restarted container: the attempt whose duration is reported, not the one before it", () => {
    const { metrics } = usage.restarted!;
    assert.ok(Math.abs(metrics.cpu_time!.value - 0.5 * 4) <= 0.5, `cpu_time ${metrics.cpu_time!.value}`);
    assert.deepEqual(metrics.max_memory, { value: 40 * MiB, unit: "bytes" }, "the first attempt's 300 MiB is not this run's");
  });

  test("a job shorter than one scrape: neither metric, and an annotation that says why", () => {
    assert.deepEqual(usage.short!.metrics, {});
    assert.match(String(usage.short!.annotations.resource_metrics), /^none: no cAdvisor sample in the run's window/);
  });

  test("through the function: the MEASUREMENT carries cpu_time and max_memory", async () => {
    const stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", PROMETHEUS_URL: url, PROMETHEUS_SCRAPE_INTERVAL: "1" });
    try {
      const answer = (await (await stack.send(podEvent(finishedPod("long", attempts[0]!)))).json()) as { outcome: string };
      assert.equal(answer.outcome, "sent");
      const { metrics } = (stack.measurements()[0]!.body as { param: { metrics: Record<string, { value: number; unit: string }> } }).param;
      assert.deepEqual([metrics.max_memory, metrics.cpu_time?.unit, metrics.duration?.value], [{ value: 120 * MiB, unit: "bytes" }, "s", 6]);
    } finally {
      await stack.close();
    }
  });

  describe("Prometheus never delays or loses a measurement", () => {
    const servers: http.Server[] = [];
    const serve = async (handler: http.RequestListener) => {
      const server = http.createServer(handler);
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    after(() => {
      for (const server of servers) {
        server.closeAllConnections();
        server.close();
      }
    });

    const cases: Array<[string, () => Promise<string>, RegExp]> = [
      ["stopped", async () => `http://127.0.0.1:${await freePort()}`, /cannot reach Prometheus: ECONNREFUSED/],
      ["hanging", () => serve(() => {}), /no answer from Prometheus within 400 ms/],
      ["answering 500", () => serve((_request, response) => response.writeHead(500).end("boom SECRET-token")), /Prometheus answered 500/],
      ["redirecting", () => serve((_request, response) => response.writeHead(302, { location: `${url}/api/v1/query` }).end()), /Prometheus answered 302/],
      ["answering 50 MB", () => serve((_request, response) => response.end(Buffer.alloc(50 * MiB, "x"))), /larger than 1048576 bytes/],
      ["answering HTML", () => serve((_request, response) => response.end("<html>login</html>")), /not JSON/],
    ];
    for (const [label, start, reason] of cases) {
      test(`${label}: the MEASUREMENT goes within the timeout, without the resource metrics, with one warning and a count`, async () => {
        const target = await start();
        const stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", PROMETHEUS_URL: target, PROMETHEUS_TIMEOUT: "0.4", PROMETHEUS_SCRAPE_INTERVAL: "1" });
        try {
          const started = performance.now();
          const answer = (await (await stack.send(podEvent(finishedPod("long", attempts[0]!)))).json()) as { outcome: string };
          const elapsed = performance.now() - started;
          assert.equal(answer.outcome, "sent");
          assert.ok(elapsed < 2000, `${elapsed} ms`);
          const { metrics, annotations } = (stack.measurements()[0]!.body as { param: { metrics: Record<string, unknown>; annotations: Record<string, string> } }).param;
          assert.deepEqual(Object.keys(metrics).sort(), ["duration", "perf"]);
          assert.match(annotations.resource_metrics ?? "", reason);
          const warnings = stack.logs.filter((line) => line.level === "warn" && /Prometheus failed/.test(String(line.msg)));
          assert.equal(warnings.length, 1);
          assert.ok(!stack.logText().includes("SECRET-token") && !stack.logText().includes("<html>"), "Prometheus' text in the log");
          const scrape = await (await fetch(new URL("/metrics", stack.fn.url))).text();
          assert.match(scrape, /servo_k8s_multijob_resource_reads_total\{result="failed"\} 1/);
        } finally {
          await stack.close();
        }
      });
    }
  });
});
