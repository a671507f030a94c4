// Job pods living through their lives on the fake API server, and an event source that turns
// every change into the CloudEvent an ApiServerSource sends, delivered over HTTP to several
// function instances: to a random instance each time, some twice (some of those at the same
// time), retried like a direct sink (at most 5 times, on 404/413/425/429/502/503/504 or a
// transport error), and optionally dropped, as a watch that reconnects drops changes.
import { CloudEvent as SdkEvent, HTTP } from "cloudevents";
import { podName, podNamespace, type Pod } from "../../handler/jobs/pod.js";
import type { FakeApiServer, WatchType } from "./fake-apiserver.js";

export type Mode = "resource" | "reference";

/** A small seeded PRNG (mulberry32), so a failing run can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface EventSourceOptions {
  readonly api: FakeApiServer;
  readonly targets: () => readonly string[];
  readonly mode: Mode;
  readonly random: () => number;
  readonly duplicateRate?: number;
  /** Deliveries in flight at once. */
  readonly concurrency?: number;
  /** Changes the watch never sees. */
  readonly drop?: (type: WatchType, pod: Pod) => boolean;
}

export interface EventSource {
  /** Resolves when every change so far has been delivered (or given up on). */
  drain(): Promise<void>;
  /** Sends one event now (e.g. a PingSource tick), with the same retries; resolves with the final status and body. */
  send(event: Record<string, unknown>): Promise<{ status: number; body: unknown }>;
  readonly stats: { events: number; duplicates: number; dropped: number; retries: number; gaveUp: number; byStatus: Record<number, number> };
}

const RETRIED = new Set([404, 413, 425, 429, 502, 503, 504]);

export function startEventSource(options: EventSourceOptions): EventSource {
  const { random } = options;
  const queue: Array<Record<string, unknown>> = [];
  const stats: EventSource["stats"] = { events: 0, duplicates: 0, dropped: 0, retries: 0, gaveUp: 0, byStatus: {} };
  let active = 0;
  const idle: Array<() => void> = [];
  let sequence = 0;

  options.api.watch((type, pod) => {
    if (options.drop?.(type, pod)) {
      stats.dropped++;
      return;
    }
    const event = cloudEvent(type, pod, options.mode, `watch-${++sequence}`);
    stats.events++;
    queue.push(event);
    if (random() < (options.duplicateRate ?? 0)) {
      stats.duplicates++;
      // Half of the duplicates right behind (handled at the same time), half later.
      if (random() < 0.5) queue.push(event);
      else queue.splice(Math.floor(random() * (queue.length + 1)), 0, event);
    }
    pump();
  });

  function pump(): void {
    while (active < (options.concurrency ?? 16) && queue.length > 0) {
      const event = queue.shift()!;
      active++;
      void deliver(event).finally(() => {
        active--;
        pump();
        if (active === 0 && queue.length === 0) for (const resolve of idle.splice(0)) resolve();
      });
    }
  }

  async function deliver(event: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
    const delivered = await deliverLikeTheAdapter(event, options.targets, random, { onRetry: () => stats.retries++ });
    stats.byStatus[delivered.status] = (stats.byStatus[delivered.status] ?? 0) + 1;
    if (delivered.status === 0 || RETRIED.has(delivered.status)) stats.gaveUp++;
    return delivered;
  }

  return {
    stats,
    drain: () => (active === 0 && queue.length === 0 ? Promise.resolve() : new Promise((resolve) => idle.push(resolve))),
    send: deliver,
  };
}

/**
 * One CloudEvent POSTed in binary mode as Knative's sender does to a direct sink: to one of the
 * targets (a Service picks a replica), retried at most 5 times on 404/413/425/429/502/503/504 or a
 * transport error (a replica that is stopping or not yet listening); status 0 when it gave up on a
 * transport error. Knative's sender waits 100 ms, doubled each time (~3 s in all); `firstWaitMs`
 * scales that down where a test needs no real time (2 ms: 50 times quicker).
 */
export async function deliverLikeTheAdapter(event: Record<string, unknown>, targets: () => readonly string[], random: () => number, options: { readonly onRetry?: () => void; readonly firstWaitMs?: number } = {}): Promise<{ status: number; body: unknown }> {
  const message = HTTP.binary(new SdkEvent(event, false));
  for (let attempt = 0; ; attempt++) {
    const now = targets();
    const target = now[Math.floor(random() * now.length)]!;
    let status = 0;
    let body: unknown;
    try {
      const response = await fetch(target, { method: "POST", headers: message.headers as Record<string, string>, body: String(message.body) });
      status = response.status;
      body = await response.json().catch(() => undefined);
    } catch {
      status = 0; // a transport error
    }
    if ((status !== 0 && !RETRIED.has(status)) || attempt === 5) return { status, body };
    options.onRetry?.();
    await new Promise((resolve) => setTimeout(resolve, (options.firstWaitMs ?? 2) * 2 ** attempt));
  }
}

export function cloudEvent(type: WatchType, pod: Pod, mode: Mode, id: string): Record<string, unknown> {
  const { name, namespace } = pod.metadata ?? {};
  const action = type === "ADDED" ? "add" : type === "MODIFIED" ? "update" : "delete";
  return {
    specversion: "1.0",
    id,
    source: "https://10.96.0.1:443",
    type: `dev.knative.apiserver.${mode === "resource" ? "resource" : "ref"}.${action}`,
    subject: `/apis/v1/namespaces/${namespace}/pods/${name}`,
    datacontenttype: "application/json",
    kind: "Pod",
    apiversion: "v1",
    name,
    namespace,
    data: mode === "resource" ? pod : { apiVersion: "v1", kind: "Pod", name, namespace },
  };
}

export function pingEvent(id: string): Record<string, unknown> {
  return {
    specversion: "1.0",
    id,
    source: "/apis/v1/namespaces/default/pingsources/servo-sweep",
    type: "dev.knative.sources.ping",
    datacontenttype: "application/json",
    data: {},
  };
}

export interface JobPodOptions {
  readonly namespace?: string;
  /** Without an app id the pod is not a job. */
  readonly jobId?: string | undefined;
}

/** A Job-owned pod as the Job controller creates it: no status yet. */
export function newJobPod(index: number, options: JobPodOptions = {}): Pod {
  const namespace = options.namespace ?? "batch";
  const job = `job-${String(index).padStart(4, "0")}`;
  const jobId = "jobId" in options ? options.jobId : `app-${index % 7}`;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `${job}-x${index.toString(36)}`,
      namespace,
      uid: `00000000-0000-4000-8000-${String(index).padStart(12, "0")}`,
      creationTimestamp: new Date(Date.now() - 600_000).toISOString().replace(/\.\d+Z$/, "Z"),
      labels: { "batch.kubernetes.io/job-name": job, "job-name": job },
      finalizers: ["batch.kubernetes.io/job-tracking"],
    } as never,
    spec: {
      containers: [{ name: "worker", env: jobId === undefined ? [] : [{ name: "JOBID", value: jobId }], resources: { limits: { cpu: "500m" } } } as never],
    },
  };
}

const seconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

/** The kubelet and the Job controller: scheduled and running, then terminated, then the phase follows. */
export function runToCompletion(api: FakeApiServer, pod: Pod, finishedMsAgo = 60_000, runSeconds = 42): void {
  startRunning(api, pod, finishedMsAgo, runSeconds);
  finish(api, pod, finishedMsAgo, runSeconds);
}

export function startRunning(api: FakeApiServer, pod: Pod, finishedMsAgo = 60_000, runSeconds = 42): void {
  const namespace = podNamespace(pod) ?? "";
  const name = podName(pod) ?? "";
  const started = Date.now() - finishedMsAgo - runSeconds * 1000;
  api.update(namespace, name, (p) => {
    p.status = { phase: "Running", containerStatuses: [{ name: "worker", state: { running: { startedAt: seconds(started) } } }] } as never;
  });
}

export function finish(api: FakeApiServer, pod: Pod, finishedMsAgo = 60_000, runSeconds = 42): void {
  const namespace = podNamespace(pod) ?? "";
  const name = podName(pod) ?? "";
  const finished = Date.now() - finishedMsAgo;
  const started = finished - runSeconds * 1000;
  api.update(namespace, name, (p) => {
    p.status = { phase: "Running", containerStatuses: [{ name: "worker", state: { terminated: { exitCode: 0, reason: "Completed", startedAt: seconds(started), finishedAt: seconds(finished) } } }] } as never;
  });
  api.update(namespace, name, (p) => {
    (p.status as { phase: string }).phase = "Succeeded";
  });
}

/** Garbage collection: the deletion timestamp, the finalizer removed, the pod gone. */
export function deletePod(api: FakeApiServer, pod: Pod): void {
  const namespace = podNamespace(pod) ?? "";
  const name = podName(pod) ?? "";
  api.update(namespace, name, (p) => {
    p.metadata.deletionTimestamp = seconds(Date.now());
  });
  api.remove(namespace, name);
}
