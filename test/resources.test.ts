// Each run's CPU seconds and peak memory from Prometheus: the queries a finished pod needs and what
// their answers mean, as pure functions (test/cluster/prometheus.test.ts runs them against a real
// Prometheus), and the configuration that turns it on.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { description } from "../handler/adjust/settings.js";
import { ConfigError, loadConfig } from "../handler/edges/config.js";
import { parseAnswer } from "../handler/edges/prometheus.js";
import { withUsage } from "../handler/measure/measurement.js";
import { resourceQueries, resourceUsage } from "../handler/measure/resources.js";
import type { Pod } from "../handler/jobs/pod.js";
import { jobPod } from "./support/pods.js";

const withContainerId = (pod: Pod, id: string): Pod => {
  const copy = structuredClone(pod) as { status: { containerStatuses: Array<{ state: { terminated: Record<string, unknown> } }> } };
  copy.status.containerStatuses[0]!.state.terminated.containerID = id;
  return copy as Pod;
};
const vector = (value: string) => parseAnswer(JSON.stringify({ status: "success", data: { resultType: "vector", result: [{ metric: {}, value: [1, value] }] } }));
const empty = parseAnswer('{"status":"success","data":{"resultType":"vector","result":[]}}');

describe("the queries of a finished run", () => {
  test("the window is startedAt … finishedAt widened by two scrape intervals, evaluated with @ at its end, for the job container only", () => {
    const queries = resourceQueries(jobPod(), 30_000)!; // ran 09:01:04 → 09:01:46
    const end = Date.parse("2026-11-24T09:02:46Z") / 1000;
    assert.equal(queries.at, end);
    assert.equal(queries.cpu, `max(max_over_time(container_cpu_usage_seconds_total{namespace="batch",pod="resize-images-8kq2x",container="worker"}[162s] @ ${end.toFixed(3)}))`);
    assert.match(queries.workingSet, /^max\(max_over_time\(container_memory_working_set_bytes\{.*container="worker"\}\[162s\] @ /);
    assert.match(queries.maxUsage, /container_memory_max_usage_bytes/);
    assert.match(queries.samples, /^max\(count_over_time\(container_cpu_usage_seconds_total/);
  });

  test("the attempt reported is told apart by its container id: a restarted container's earlier series are not this run's", () => {
    const queries = resourceQueries(withContainerId(jobPod(), `containerd://${"ab".repeat(32)}`), 30_000)!;
    assert.ok(queries.cpu.includes(`,id=~".*${"ab".repeat(32)}.*"}`), queries.cpu);
  });

  test("no window, no queries: a run that never started, or a pod without a name", () => {
    assert.equal(resourceQueries(jobPod({ startedAt: null }), 30_000), undefined);
    assert.equal(resourceQueries({ ...jobPod(), metadata: { namespace: "batch" } }, 30_000), undefined);
  });

  test("a pod's text cannot break out of a label matcher", () => {
    const queries = resourceQueries(jobPod({ name: 'x"} or vector(1) #' }), 30_000)!;
    assert.ok(queries.cpu.includes('pod="x\\"} or vector(1) #"'), queries.cpu);
  });
});

describe("what the answers mean", () => {
  const answers = (cpu: string, workingSet: string, maxUsage: string, samples: string) => ({ cpu: vector(cpu), workingSet: vector(workingSet), maxUsage: vector(maxUsage), samples: vector(samples) });

  test("CPU seconds to the millisecond; max_usage as the peak where it is non-zero", () => {
    assert.deepEqual(resourceUsage(answers("12.34567", "104857600", "134217728", "9"), 30_000), {
      metrics: { cpu_time: { value: 12.346, unit: "s" }, max_memory: { value: 134217728, unit: "bytes" } },
      annotations: { resource_samples: 9, max_memory_source: "container_memory_max_usage_bytes" },
    });
  });

  test("the largest finite CPU value is sent as it is, never as null", () => {
    const usage = resourceUsage(answers("1.7976931348623157e308", "104857600", "0", "3"), 30_000);
    assert.ok(!("failure" in usage));
    assert.deepEqual(usage.metrics.cpu_time, { value: Number.MAX_VALUE, unit: "s" });
    assert.equal(JSON.stringify(usage).includes("null"), false);
  });

  test("a sample count beyond whole numbers a double can hold is not believed: a failure, in our words", () => {
    assert.deepEqual(resourceUsage(answers("1", "104857600", "0", "9007199254740992"), 30_000), { failure: "Prometheus' sample count is not a whole number" });
  });

  test("max_usage 0 (cgroup v2 before kernel 5.19 / runc 1.1.11): the peak working set", () => {
    const usage = resourceUsage(answers("1", "104857600", "0", "3"), 30_000);
    assert.ok(!("failure" in usage));
    assert.deepEqual([usage.metrics.max_memory, usage.annotations.max_memory_source], [{ value: 104857600, unit: "bytes" }, "container_memory_working_set_bytes"]);
  });

  test("no samples: neither metric, and why", () => {
    const usage = resourceUsage({ cpu: empty, workingSet: empty, maxUsage: empty, samples: empty }, 30_000);
    assert.deepEqual(usage, { metrics: {}, annotations: { resource_metrics: "none: no cAdvisor sample in the run's window (a run shorter than one scrape interval, 30 s, has none)" } });
  });

  test("a failed query is a failure, with our words, never Prometheus'", () => {
    assert.deepEqual(resourceUsage({ cpu: parseAnswer("<html>SECRET</html>"), workingSet: empty, maxUsage: empty, samples: empty }, 30_000), { failure: "Prometheus' answer is not JSON" });
    assert.deepEqual(parseAnswer('{"status":"error","errorType":"bad_data","error":"SECRET"}'), { ok: false, reason: "Prometheus' answer is not a successful instant vector" });
    assert.deepEqual(parseAnswer('{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]},{"metric":{"a":"b"},"value":[1,"2"]}]}}'), { ok: true, samples: [{ metric: { a: "b" }, value: 2 }] });
  });

  test("a value that is not a number as Prometheus writes one (blank, hex, padded) is no sample", () => {
    for (const value of ["", " 7 ", "0x1F", "1_000", "Infinity"]) assert.deepEqual(vector(value), { ok: true, samples: [] }, JSON.stringify(value));
    for (const [value, number] of [["7", 7], ["-1.5e-3", -0.0015], [".5", 0.5], ["1E+300", 1e300]] as const) assert.deepEqual(vector(value), { ok: true, samples: [{ metric: {}, value: number }] }, value);
  });

  test("the MEASUREMENT gains the metrics and annotations; a failed-run message stays as it is", () => {
    const message = { event: "MEASUREMENT" as const, param: { metrics: { duration: { value: 42, unit: "s" } }, annotations: { exitcode: 0 } } };
    assert.deepEqual(withUsage(message, { metrics: { cpu_time: { value: 1.5, unit: "s" } }, annotations: { resource_samples: 3 } }), { event: "MEASUREMENT", param: { metrics: { duration: { value: 42, unit: "s" }, cpu_time: { value: 1.5, unit: "s" } }, annotations: { exitcode: 0, resource_samples: 3 } } });
    const failed = { event: "MEASUREMENT" as const, param: { status: "failed" as const, message: "job deleted before it ran" } };
    assert.equal(withUsage(failed, { metrics: {}, annotations: {} }), failed);
  });

  test("DESCRIPTION lists cpu_time and max_memory only when Prometheus is configured", () => {
    const ranges = { cpu: { min: 0.1, max: 3.5, step: 0.001 }, mem: { min: 67108864, max: 1073741824, step: 4096 } };
    const metrics = (on: boolean) => Object.keys((description(jobPod(), "worker", ranges, on) as { metrics: object }).metrics);
    assert.deepEqual(metrics(false), ["duration", "est_duration", "perf"]);
    assert.deepEqual(metrics(true), ["duration", "est_duration", "perf", "cpu_time", "max_memory"]);
  });
});

describe("PROMETHEUS_* configuration", () => {
  test("unset: no resource metrics; set: 2 s timeout and a 30 s scrape interval by default", () => {
    assert.equal(loadConfig({}).prometheus, undefined);
    assert.deepEqual(loadConfig({ PROMETHEUS_URL: "http://prometheus.monitoring.svc:9090/" }).prometheus, { url: "http://prometheus.monitoring.svc:9090", timeoutMs: 2000, scrapeIntervalMs: 30_000 });
  });

  for (const [env, message] of [
    [{ PROMETHEUS_TIMEOUT: "2" }, /^PROMETHEUS_TIMEOUT is set, but PROMETHEUS_URL is not$/],
    [{ PROMETHEUS_URL: "ftp://x" }, /^PROMETHEUS_URL must be the http:\/\/ or https:\/\/ URL/],
    [{ PROMETHEUS_URL: "http://user:pw@x:9090" }, /^PROMETHEUS_URL must not hold a user:password@ part \(not shown\)/],
    [{ PROMETHEUS_URL: "http://x:9090/?a=b" }, /without a query or fragment/],
    [{ PROMETHEUS_URL: "http://x:9090", PROMETHEUS_TIMEOUT: "11" }, /^PROMETHEUS_TIMEOUT must be at most 10 seconds/],
    [{ PROMETHEUS_URL: "http://x:9090", PROMETHEUS_CA_FILE: "/nonexistent/ca.pem" }, /^PROMETHEUS_CA_FILE names a file that cannot be read/],
  ] as const) {
    test(`refuses ${JSON.stringify(env)}`, () => {
      assert.throws(() => loadConfig(env), (error: Error) => error instanceof ConfigError && message.test(error.message));
    });
  }
});
