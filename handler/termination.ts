// Is the job done, and how long did it run? (SPEC.md section 3)
import { isRecord, type Container, type ContainerStatus, type Pod, type TerminatedState } from "./pod.js";

/** The job container is the first container of the pod spec. */
export function jobContainer(pod: Pod): Container | undefined {
  const containers = pod.spec?.containers;
  return Array.isArray(containers) && isRecord(containers[0]) ? containers[0] : undefined;
}

/** The job container's status, found by name: the kubelet sorts containerStatuses by name, not in spec order. */
export function jobContainerStatus(pod: Pod): ContainerStatus | undefined {
  const name = jobContainer(pod)?.name;
  const statuses = pod.status?.containerStatuses;
  if (name === undefined || !Array.isArray(statuses)) return undefined;
  return statuses.find((status): status is ContainerStatus => isRecord(status) && status.name === name);
}

/** The job container's current terminated state; only the current `state` counts, never `lastState`. */
export function terminatedState(pod: Pod): TerminatedState | undefined {
  const terminated = jobContainerStatus(pod)?.state?.terminated;
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
    return { kind: "invalid", reason: `unreadable startedAt/finishedAt ${JSON.stringify([startedAt, finishedAt])}` };
  }
  const seconds = Math.round((finished - started) / 1000);
  if (seconds < 0) return { kind: "invalid", reason: `finishedAt ${finishedAt} is before startedAt ${startedAt}` };
  return { kind: "ran", seconds };
}

/** Milliseconds since the epoch of an RFC 3339 timestamp, or undefined. */
export function parseTimestamp(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
