// Each run's CPU seconds and peak memory, from the kubelet's cAdvisor series in Prometheus (the only
// source that outlives the container: the Summary API, /metrics/resource and metrics-server drop
// it with its cgroup). Pure: which queries a finished run needs, and what their answers mean.
// The window is the reported attempt's startedAt … finishedAt widened by two scrape intervals,
// evaluated with `@ end` so it works after the series went stale.
import { text, type Pod } from "../jobs/pod.js";
import { jobContainer } from "../jobs/job.js";
import type { QueryResult, Sample } from "../edges/prometheus.js";
import type { Metric } from "./measurement.js";
import { finishedRun, parseTimestamp } from "./termination.js";

export interface ResourceQueries {
  /** Evaluation time, Unix seconds: the end of the window. */
  readonly at: number;
  readonly cpu: string;
  readonly workingSet: string;
  readonly maxUsage: string;
  readonly samples: string;
}

/** What the MEASUREMENT gains: the metrics (when there were samples) and annotations that say how they were read. */
export interface ResourceUsage {
  readonly metrics: Readonly<Record<string, Metric>>;
  readonly annotations: Readonly<Record<string, string | number>>;
}

/** The queries for the run `pod` reports, or undefined when it has no window (never ran, odd timestamps). */
export function resourceQueries(pod: Pod, scrapeIntervalMs: number, deleted = false): ResourceQueries | undefined {
  const run = finishedRun(pod, deleted);
  const started = parseTimestamp(run?.terminated.startedAt);
  const finished = parseTimestamp(run?.terminated.finishedAt);
  const container = text(jobContainer(pod)?.name);
  const namespace = text(pod.metadata?.namespace);
  const name = text(pod.metadata?.name);
  if (run === undefined || started === undefined || finished === undefined || finished < started || container === undefined || namespace === undefined || name === undefined) return undefined;
  const from = started - 2 * scrapeIntervalMs;
  const to = finished + 2 * scrapeIntervalMs;
  const range = `${Math.ceil((to - from) / 1000)}s`;
  const at = to / 1000;
  // A restarted container (OnFailure) has a series per attempt, told apart by the container id in `id`.
  const id = /^[a-z-]+:\/\/([0-9a-f]{12,128})$/.exec(text((run.terminated as { containerID?: unknown }).containerID) ?? "")?.[1];
  // container!="" leaves out the pause sandbox and the pod aggregate, which carry no container label.
  const selector = `{namespace=${quoted(namespace)},pod=${quoted(name)},container=${quoted(container)}${id === undefined ? "" : `,id=~${quoted(`.*${id}.*`)}`}}`;
  const over = (fn: string, series: string) => `${fn}(${series}${selector}[${range}] @ ${at.toFixed(3)})`;
  return {
    at,
    // The counter starts at ~0 with the container: its last value is the run's CPU seconds (increase() would extrapolate and lose the time before the first scrape).
    cpu: `max(${over("max_over_time", "container_cpu_usage_seconds_total")})`,
    workingSet: `max(${over("max_over_time", "container_memory_working_set_bytes")})`,
    maxUsage: `max(${over("max_over_time", "container_memory_max_usage_bytes")})`,
    samples: `max(${over("count_over_time", "container_cpu_usage_seconds_total")})`,
  };
}

/**
 * The usage the answers say, or why there is none. max_memory is container_memory_max_usage_bytes
 * (the true high-water mark, page cache included) where it is non-zero, which it is not on cgroup
 * v2 before kernel 5.19 / runc 1.1.11; else the peak working set (what krr, OpenCost and VPA use).
 */
export function resourceUsage(answers: { readonly cpu: QueryResult; readonly workingSet: QueryResult; readonly maxUsage: QueryResult; readonly samples: QueryResult }, scrapeIntervalMs: number): ResourceUsage | { readonly failure: string } {
  for (const answer of Object.values(answers)) if (!answer.ok) return { failure: answer.reason };
  const value = (answer: QueryResult) => (answer.ok ? single(answer.samples) : undefined);
  const samples = value(answers.samples) ?? 0;
  const cpu = value(answers.cpu);
  const workingSet = value(answers.workingSet);
  if (samples === 0 || cpu === undefined || workingSet === undefined) {
    return { metrics: {}, annotations: { resource_metrics: `none: no cAdvisor sample in the run's window (a run shorter than one scrape interval, ${scrapeIntervalMs / 1000} s, has none)` } };
  }
  if (!Number.isSafeInteger(Math.round(samples))) return { failure: "Prometheus' sample count is not a whole number" };
  const maxUsage = value(answers.maxUsage);
  const useMaxUsage = maxUsage !== undefined && maxUsage > 0;
  return {
    metrics: { cpu_time: { value: toMilliseconds(cpu), unit: "s" }, max_memory: { value: Math.round(useMaxUsage ? Math.max(maxUsage, workingSet) : workingSet), unit: "bytes" } },
    annotations: { resource_samples: Math.round(samples), max_memory_source: useMaxUsage ? "container_memory_max_usage_bytes" : "container_memory_working_set_bytes" },
  };
}

/** Seconds rounded to the millisecond; from 2^52 on a double has no fraction left, and ×1000 could overflow to Infinity (sent as null). */
function toMilliseconds(seconds: number): number {
  return seconds >= 2 ** 52 ? seconds : Math.round(seconds * 1000) / 1000;
}

function single(samples: readonly Sample[]): number | undefined {
  const [first] = samples;
  return first !== undefined && first.value >= 0 ? first.value : undefined;
}

/** A PromQL string literal (label values here are DNS names, but a pod is untrusted input). */
function quoted(value: string): string {
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`;
}

export interface ResourceReaderDeps {
  readonly query: import("../edges/prometheus.js").Query;
  readonly timeoutMs: number;
  readonly scrapeIntervalMs: number;
  /** One warning a minute when Prometheus fails: the MEASUREMENT goes without the resource metrics. */
  readonly warn: (message: string, fields: Readonly<Record<string, unknown>>) => void;
  /** Counts each read by result: read, none (no samples), failed. */
  readonly count?: (result: "read" | "none" | "failed") => void;
  readonly now?: () => number;
  /** Aborted when the shutdown grace period is over: queries in flight end at once. */
  readonly signal?: AbortSignal;
}

/** Reads a finished pod's usage, never longer than the timeout and never throwing: Prometheus never delays or loses a measurement. */
export function resourceReader(deps: ResourceReaderDeps): (pod: Pod, deleted: boolean) => Promise<ResourceUsage | undefined> {
  const now = deps.now ?? Date.now;
  let lastWarning = -Infinity;
  let failures = 0;
  return async (pod, deleted) => {
    const queries = resourceQueries(pod, deps.scrapeIntervalMs, deleted);
    if (queries === undefined) return undefined;
    const timeout = AbortSignal.timeout(deps.timeoutMs);
    const signal = deps.signal === undefined ? timeout : AbortSignal.any([timeout, deps.signal]);
    const ask = (promql: string) => deps.query(promql, queries.at, signal);
    const [cpu, workingSet, maxUsage, samples] = await Promise.all([ask(queries.cpu), ask(queries.workingSet), ask(queries.maxUsage), ask(queries.samples)]);
    const usage = resourceUsage({ cpu, workingSet, maxUsage, samples }, deps.scrapeIntervalMs);
    if ("failure" in usage) {
      deps.count?.("failed");
      failures++;
      if (now() - lastWarning >= 60_000) {
        deps.warn("Prometheus failed: MEASUREMENTs go without cpu_time and max_memory", { reason: usage.failure, failuresSinceLastLine: failures });
        lastWarning = now();
        failures = 0;
      }
      return { metrics: {}, annotations: { resource_metrics: `none: ${usage.failure}` } };
    }
    deps.count?.(Object.keys(usage.metrics).length > 0 ? "read" : "none");
    return usage;
  };
}
