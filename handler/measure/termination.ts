// Is the job done, and how long did it run? (SPEC.md section 3)
import { jobContainer } from "../jobs/job.js";
import { excerpt, isCount, isRecord, text, type Container, type ContainerState, type ContainerStatus, type Pod, type TerminatedState } from "../jobs/pod.js";

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
  /** How often the container restarted, for containers that may restart (a restart policy or rule). */
  readonly restarts?: number;
}

/**
 * The job container's finished run, or undefined while it may still run. A terminated state is
 * final when the kubelet will not restart the container after that exit (restartsAfter: its
 * restart rules, its own restartPolicy, the pod's). A container that will restart is done only
 * when the pod is (phase Succeeded or Failed) or deleted; its last attempt is then the current
 * state, or, while it waits to restart, `lastState`.
 */
export function finishedRun(pod: Pod, deleted = false): FinishedRun | undefined {
  const status = jobContainerStatus(pod);
  if (status === undefined) return undefined;
  const container = jobContainer(pod);
  const current = terminatedOf(status.state);
  const count = status.restartCount;
  const restarts = restartable(pod, container) && isCount(count) ? { restarts: count } : {};
  if (current !== undefined && !restartsAfter(pod, container, current.exitCode)) return { terminated: current, ...restarts };
  if (!restartable(pod, container)) return undefined;

  const phase = pod.status?.phase;
  if (!deleted && phase !== "Succeeded" && phase !== "Failed") return undefined;
  const last = current ?? (isRecord(status.state?.waiting) ? terminatedOf(status.lastState) : undefined);
  if (last === undefined) return undefined;
  return { terminated: last, ...restarts };
}

/**
 * Will the kubelet restart this container after it exited with `exitCode`? As the kubelet decides
 * (k8s.io/kubernetes pkg/api/v1/pod ContainerShouldRestart, 1.35+): with a container-level
 * restartPolicy, the first of its restartPolicyRules whose exit codes match decides (Restart or
 * RestartAllContainers: yes), else that policy; without one, the pod's. A pod without a
 * restartPolicy is a hand-written one (the API server always sets it): its current state decides.
 */
export function restartsAfter(pod: Pod, container: Container | undefined, exitCode: unknown): boolean {
  const own = container?.restartPolicy;
  if (own === "Always" || own === "OnFailure" || own === "Never") {
    const rule = matchingRule(container?.restartPolicyRules, exitCode);
    if (rule === "Restart" || rule === "RestartAllContainers") return true;
    return policyRestarts(own, exitCode);
  }
  const policy = pod.spec?.restartPolicy;
  return policyRestarts(policy === "OnFailure" || policy === "Always" ? policy : "Never", exitCode);
}

/** May the container restart at all (so that a terminated state can be followed by another run)? */
function restartable(pod: Pod, container: Container | undefined): boolean {
  const own = container?.restartPolicy;
  if (own === "Always" || own === "OnFailure" || own === "Never") {
    const rules = container?.restartPolicyRules;
    return own !== "Never" || (Array.isArray(rules) && rules.some((rule) => isRecord(rule) && (rule.action === "Restart" || rule.action === "RestartAllContainers")));
  }
  const policy = pod.spec?.restartPolicy;
  return policy === "OnFailure" || policy === "Always";
}

function policyRestarts(policy: "Always" | "OnFailure" | "Never", exitCode: unknown): boolean {
  return policy === "Always" || (policy === "OnFailure" && exitCode !== 0);
}

/** The action of the first rule whose exitCodes (In / NotIn values) match, or undefined. */
function matchingRule(rules: unknown, exitCode: unknown): unknown {
  if (!Array.isArray(rules) || typeof exitCode !== "number") return undefined;
  for (const rule of rules) {
    if (!isRecord(rule) || !isRecord(rule.exitCodes) || !Array.isArray(rule.exitCodes.values)) continue;
    const listed = rule.exitCodes.values.includes(exitCode);
    if ((rule.exitCodes.operator === "In" && listed) || (rule.exitCodes.operator === "NotIn" && !listed)) return rule.action;
  }
  return undefined;
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
