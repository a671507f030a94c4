// Prometheus metrics (GET /metrics), shared by both halves. prom-client is loaded off the start
// path (like the Kubernetes client): what happens before it is there is kept and counted once it
// is. Every label comes from a small fixed set: never an app id, a pod or a namespace name.
import type http from "node:http";
import type { Counter, Registry } from "prom-client";

export const PREFIX = "servo_k8s_multijob_";

/** What the halves and the edges report. No-ops until a registry is made (the CLI's in-process commands have none). */
export interface Metrics {
  /** An event handled: its CloudEvent type class (resource, reference, ping, other: pod-event.ts) and its outcome. */
  event(typeClass: string, outcome: string): void;
  /** A message to Optune: measurement, lifecycle or adjust; sent, failed, or printed (dry run). */
  message(message: string, result: "sent" | "failed" | "printed"): void;
  /** One attempt of a POST to Optune: its status class (2xx … 5xx, timeout, error) and duration. */
  optuneAttempt(statusClass: string, seconds: number): void;
  optuneRetry(): void;
  /** A claim: won, lost (to another instance, 409), already_reported, backing_off, refused (403). */
  claim(result: string): void;
  kubernetesRequest(verb: string, statusClass: string, seconds: number): void;
  /** A sweep that ran (with how many pods came to what) or failed. */
  sweep(pods: Readonly<Record<string, number>> | undefined): void;
  /** A measured job's run time (absent when it never ran) and exit code. */
  /** A reported run; a disrupted one (preempted, evicted, killed by its Job) is counted apart, not as a run time. */
  job(seconds: number | undefined, exitCode: number | undefined, disrupted?: string): void;
  admission(result: string): void;
  /** A finished job's resource usage read from Prometheus: read, none (no samples), failed. */
  resources(result: string): void;
  /** A held pod let go (its finalizer removed) without its MEASUREMENT reaching Optune, by why (hold.ts). */
  lost(reason: string): void;
}

export interface MetricsRegistry extends Metrics {
  /** The Prometheus text exposition of everything. */
  render(): Promise<{ readonly contentType: string; readonly text: string }>;
  /** Starts loading prom-client (once); resolves when it is loaded. */
  load(): Promise<void>;
}

const ignore = () => {};
export const noMetrics: Metrics = { event: ignore, message: ignore, optuneAttempt: ignore, optuneRetry: ignore, claim: ignore, kubernetesRequest: ignore, sweep: ignore, job: ignore, admission: ignore, resources: ignore, lost: ignore };

/** The HTTP status class of a status, or what happened instead. */
export function statusClass(status: number | undefined, failure?: "timeout" | "error"): string {
  if (status === undefined || status < 100 || status > 599) return failure ?? "error";
  return `${Math.floor(status / 100)}xx`;
}

const label = (value: string) => value.replaceAll("-", "_");
/** Request durations, 5 ms to 10 s. */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Pending calls kept before prom-client is loaded: plenty for the milliseconds that takes. */
const MAX_PENDING = 10_000;

type Client = typeof import("prom-client");
type Collectors = ReturnType<typeof collectors>;

/**
 * Which server exports: each exports only what it can move, so an alert never reads a value that
 * means nothing (the webhook's sweep gauge at 0, say). `sweeps`: this instance can sweep (claims in
 * the pods); only then is there a last-successful-sweep gauge.
 */
export type MetricsRole = { readonly server: "function"; readonly sweeps: boolean } | { readonly server: "webhook" };

function collectors(client: Client, registry: Registry, role: MetricsRole) {
  const function_ = role.server === "function";
  const registers = [registry];
  const none: Registry[] = [];
  // A collector a server never moves is made but not registered: recording into it costs nothing, and it is not exported.
  const counter = (name: string, help: string, labelNames: string[] = [], exported = true) => new client.Counter({ name: PREFIX + name, help, labelNames, registers: exported ? registers : none });
  const histogram = (name: string, help: string, labelNames: string[], buckets: number[], exported = true) => new client.Histogram({ name: PREFIX + name, help, labelNames, buckets, registers: exported ? registers : none });
  const sweeps = role.server === "function" && role.sweeps;
  return {
    events: counter("events_total", "CloudEvents handled, by type class and outcome.", ["type", "outcome"], function_),
    messages: counter("messages_total", "Messages to Optune, by message and result (printed: a dry run).", ["message", "result"]),
    optune: histogram("optune_request_duration_seconds", "How long each attempt of a POST to Optune took.", [], REQUEST_BUCKETS),
    optuneAttempts: counter("optune_requests_total", "Attempts of POSTs to Optune, by HTTP status class (or timeout, error).", ["status_class"]),
    retries: counter("optune_retries_total", "Attempts to Optune that are retried."),
    claims: counter("claims_total", "Claims of finished jobs, by result.", ["result"], function_),
    kubernetes: histogram("kubernetes_request_duration_seconds", "How long Kubernetes API requests took, by verb.", ["verb"], REQUEST_BUCKETS),
    kubernetesRequests: counter("kubernetes_requests_total", "Kubernetes API requests, by verb and HTTP status class (or timeout, error).", ["verb", "status_class"]),
    sweeps: counter("sweeps_total", "Sweeps, by result (done, failed).", ["result"], sweeps),
    sweepPods: counter("sweep_pods_total", "Pods the sweeps looked at, by what came of them.", ["result"], sweeps),
    lastSweep: lastSweep(client, sweeps ? registers : none),
    jobRun: histogram("job_run_seconds", "Run time of the measured jobs.", [], [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400], function_),
    jobExits: counter("job_exits_total", "Measured jobs by exit code class (zero, nonzero, unknown).", ["exit"], function_),
    disrupted: counter("disrupted_runs_total", "Runs cut short from outside (preempted, evicted, killed by their Job), reported marked and without perf, by reason.", ["reason"], function_),
    admissions: counter("admissions_total", "Pods admitted by the webhook, by result.", ["result"], !function_),
    lost: counter("measurements_lost_total", "Finished job pods let go before Optune had their MEASUREMENT (held longer than OPTUNE_HOLD, holding turned off), by reason.", ["reason"], function_),
    resources: counter("resource_reads_total", "Reads of a finished job's CPU seconds and peak memory from Prometheus, by result (read, none: no samples, failed).", ["result"], function_),
  };
}

/** Set to the instance's start until its first successful sweep: an instance whose sweeps never succeed alarms too. */
function lastSweep(client: Client, registers: Registry[]) {
  const gauge = new client.Gauge({ name: `${PREFIX}last_successful_sweep_timestamp_seconds`, help: "When the last sweep that did not fail ended, or when this instance started (Unix time). Only on instances that sweep.", registers });
  gauge.set(Math.floor(Date.now() / 1000 - process.uptime()));
  return gauge;
}

export function createMetrics(role: MetricsRole): MetricsRegistry {
  let real: Collectors | undefined;
  let registry: Registry | undefined;
  let loading: Promise<void> | undefined;
  const pending: Array<(collectors: Collectors) => void> = [];
  /** Records now, or once prom-client is loaded. */
  const record = (update: (collectors: Collectors) => void) => {
    if (real !== undefined) update(real);
    else if (pending.length < MAX_PENDING) pending.push(update);
  };
  const load = () =>
    (loading ??= import("prom-client").then((client) => {
      registry = new client.Registry();
      client.collectDefaultMetrics({ register: registry });
      real = collectors(client, registry, role);
      for (const update of pending.splice(0)) update(real);
    }));
  // The per-event counters are plain numbers, moved into prom-client's counters when scraped: on
  // the hot path an event costs two Map lookups and an add (a label child's inc hashes its labels).
  const events = tally();
  const claims = tally();

  return {
    event: (typeClass, outcome) => events.add(typeClass, outcome, () => ({ type: typeClass, outcome: label(outcome) })),
    claim: (result) => claims.add(result, "", () => ({ result: label(result) })),
    message: (message, result) => record((r) => r.messages.inc({ message, result })),
    optuneAttempt: (status, seconds) =>
      record((r) => {
        r.optune.observe(seconds);
        r.optuneAttempts.inc({ status_class: status });
      }),
    optuneRetry: () => record((r) => r.retries.inc()),
    kubernetesRequest: (verb, status, seconds) =>
      record((r) => {
        r.kubernetes.observe({ verb }, seconds);
        r.kubernetesRequests.inc({ verb, status_class: status });
      }),
    sweep: (pods) =>
      record((r) => {
        r.sweeps.inc({ result: pods === undefined ? "failed" : "done" });
        if (pods === undefined) return;
        for (const [result, count] of Object.entries(pods)) if (count > 0) r.sweepPods.inc({ result: label(result) }, count);
        r.lastSweep.setToCurrentTime();
      }),
    job: (seconds, exitCode, disrupted) => {
      const exit = exitCode === undefined ? "unknown" : exitCode === 0 ? "zero" : "nonzero";
      record((r) => {
        if (disrupted !== undefined) return r.disrupted.inc({ reason: label(disrupted) });
        if (seconds !== undefined) r.jobRun.observe(seconds);
        r.jobExits.inc({ exit });
      });
    },
    admission: (result) => record((r) => r.admissions.inc({ result: label(result) })),
    resources: (result) => record((r) => r.resources.inc({ result })),
    lost: (reason) => record((r) => r.lost.inc({ reason: label(reason) })),
    async render() {
      await load();
      events.moveTo(real!.events);
      claims.moveTo(real!.claims);
      return { contentType: registry!.contentType, text: await registry!.metrics() };
    },
    load,
  };
}

/** Counts by a label set named by one or two keys, kept as plain numbers until they are scraped. */
function tally() {
  const counts = new Map<string, Map<string, { readonly labels: Record<string, string>; pending: number }>>();
  return {
    add(first: string, second: string, labels: () => Record<string, string>): void {
      let inner = counts.get(first);
      if (inner === undefined) counts.set(first, (inner = new Map()));
      const entry = inner.get(second);
      if (entry === undefined) inner.set(second, { labels: labels(), pending: 1 });
      else entry.pending++;
    },
    /** Adds what was counted since the last call to `counter`. */
    moveTo(counter: Counter<string>): void {
      for (const inner of counts.values()) {
        for (const entry of inner.values()) {
          if (entry.pending === 0) continue;
          counter.inc(entry.labels, entry.pending);
          entry.pending = 0;
        }
      }
    },
  };
}

/** GET /metrics: the Prometheus text format, for the servers' edge. */
export function metricsEndpoint(registry: MetricsRegistry): (response: http.ServerResponse) => Promise<void> {
  return async (response) => {
    const { contentType, text } = await registry.render();
    response.writeHead(200, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(text) });
    response.end(text);
  };
}
