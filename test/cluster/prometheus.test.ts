// Each run's CPU seconds and peak memory from a real Prometheus (Debian's 2.42), scraping every
// second a stand-in kubelet that serves cAdvisor series with the real names and label shapes (the
// job container, the pause sandbox and the pod aggregate without `container`) whose values move
// while the test jobs run. Then Prometheus failing every way: the MEASUREMENT still goes.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { findPrometheus, freePort, startScrapedKubelet, type Attempt, type ScrapedKubelet } from "../../handler/demo/cadvisor-stand-in.js";
import { connectPrometheus } from "../../handler/edges/prometheus.js";
import { resourceReader, type ResourceUsage } from "../../handler/measure/resources.js";
import type { Pod } from "../../handler/jobs/pod.js";
import { podEvent, startStack } from "../support/stack.js";

const PROMETHEUS = findPrometheus() ?? "";
const missing = PROMETHEUS !== "" ? undefined : "prometheus not found on PATH (or PROMETHEUS): run test/cluster/install.sh (Debian's prometheus package)";
if (missing !== undefined && process.env.REQUIRE_CLUSTER === "1") throw new Error(`REQUIRE_CLUSTER=1, but ${missing}`);
const skip = missing === undefined ? false : `the real Prometheus tier: ${missing}`;

const MiB = 1024 * 1024;
const SCRAPE_MS = 1000;
const rfc3339 = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");

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
  let scraped: ScrapedKubelet;
  let url: string;
  let attempts: Attempt[];
  const usage: Record<string, ResourceUsage | undefined> = {};
  const hex = (seed: number) => seed.toString(16).padStart(2, "0").repeat(32);

  before(async () => {
    scraped = await startScrapedKubelet(PROMETHEUS);
    ({ url, attempts } = scraped);
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
  after(async () => scraped?.stop());

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

    // Only the hanging case needs a short timeout (that is what it shows); the others get the longest allowed, one a
    // loaded machine keeps, so a slow machine cannot turn "answering 50 MB" into "no answer".
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
        const hanging = label === "hanging";
        const stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", PROMETHEUS_URL: target, PROMETHEUS_TIMEOUT: hanging ? "0.4" : "10", PROMETHEUS_SCRAPE_INTERVAL: "1" });
        try {
          const started = performance.now();
          const answer = (await (await stack.send(podEvent(finishedPod("long", attempts[0]!)))).json()) as { outcome: string };
          const elapsed = performance.now() - started;
          assert.equal(answer.outcome, "sent");
          // The hang ends at PROMETHEUS_TIMEOUT (0.4 s), not at some default.
          if (hanging) assert.ok(elapsed < 20_000, `${elapsed} ms`);
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
