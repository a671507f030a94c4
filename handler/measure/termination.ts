// Is the job done, and how long did it run? (SPEC.md section 3)
import { jobContainer } from "../jobs/job.js";
import { excerpt, isCount, isRecord, text, type ContainerState, type ContainerStatus, type Pod, type TerminatedState } from "../jobs/pod.js";

/** The job container's status, found by name: the kubelet sorts containerStatuses by name, not in spec order. */
export function jobContainerStatus(pod: Pod): ContainerStatus | undefined {
  const name = text(jobContainer(pod)?.name);
  const statuses = pod.status?.containerStatuses;
  if (name === undefined || !Array.isArray(statuses)) return undefined;
  return statuses.find((status): status is ContainerStatus => isRecord(status) && status.name === name);
}

/** A finished run of the job container: the attempt to report. */
export interface FinishedRun {
  readonly terminated: TerminatedState;
  /** How often the container restarted, for pods whose containers restart (restartPolicy OnFailure). */
  readonly restarts?: number;
}

/**
 * The job container's finished run, or undefined while it may still run. With `restartPolicy:
 * Never` (or none, as in a hand-written pod) the current state decides, never `lastState`. A
 * container that restarts is done only when the pod is (phase Succeeded or Failed) or deleted;
 * its last attempt is then the current state, or, while it waits to restart, `lastState`.
 */
export function finishedRun(pod: Pod, deleted = false): FinishedRun | undefined {
  const status = jobContainerStatus(pod);
  if (status === undefined) return undefined;
  const current = terminatedOf(status.state);
  if (!restarts(pod)) return current === undefined ? undefined : { terminated: current };

  const phase = pod.status?.phase;
  if (!deleted && phase !== "Succeeded" && phase !== "Failed") return undefined;
  const last = current ?? (isRecord(status.state?.waiting) ? terminatedOf(status.lastState) : undefined);
  if (last === undefined) return undefined;
  const count = status.restartCount;
  return { terminated: last, ...(isCount(count) ? { restarts: count } : {}) };
}

/** OnFailure and Always restart the container in place; the API default is Always, a Job allows Never or OnFailure. */
function restarts(pod: Pod): boolean {
  const policy = pod.spec?.restartPolicy;
  return policy === "OnFailure" || policy === "Always";
}

function terminatedOf(state: ContainerState | undefined): TerminatedState | undefined {
  const terminated = isRecord(state) ? state.terminated : undefined;
  return isRecord(terminated) ? terminated : undefined;
}

export type RunTime =
  | { readonly kind: "ran"; readonly seconds: number }
  /** startedAt or finishedAt is null/absent: the container never started (e.g. ContainerStatusUnknown). */
  | { readonly kind: "never-ran" }
  | { readonly kind: "invalid"; readonly reason: string };

/** finishedAt - startedAt in whole seconds (Kubernetes timestamps have second precision). */
export function runDuration(terminated: TerminatedState): RunTime {
  const { startedAt, finishedAt } = terminated;
  if (startedAt === undefined || startedAt === null || finishedAt === undefined || finishedAt === null) {
    return { kind: "never-ran" };
  }
  const started = parseTimestamp(startedAt);
  const finished = parseTimestamp(finishedAt);
  if (started === undefined || finished === undefined) {
    return { kind: "invalid", reason: `unreadable startedAt/finishedAt (RFC 3339 with a zone expected): ${excerpt(startedAt)}, ${excerpt(finishedAt)}` };
  }
  const seconds = Math.round((finished - started) / 1000);
  if (seconds < 0) return { kind: "invalid", reason: `finishedAt ${finishedAt as string} is before startedAt ${startedAt as string}` };
  return { kind: "ran", seconds };
}

// RFC 3339 with a zone, as Kubernetes writes it; Date.parse alone also reads "1" or local times.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/** Milliseconds since the epoch of an RFC 3339 timestamp with a zone, or undefined. */
export function parseTimestamp(value: unknown): number | undefined {
  if (typeof value !== "string" || !RFC3339.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
