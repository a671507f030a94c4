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
 * restart rules, its own restartPolicy, else the pod's). A container that will restart is done only
 * when the pod is (phase Succeeded or Failed) or deleted; its last attempt is then the current
 * state, or, while it waits to restart, `lastState`.
 */
export function finishedRun(pod: Pod, deleted = false): FinishedRun | undefined {
  const status = jobContainerStatus(pod);
  if (status === undefined) return undefined;
  const policy = restartPolicy(pod, jobContainer(pod));
  const current = terminatedOf(status.state);
  const count = status.restartCount;
  const restarts = policy.restartable && isCount(count) ? { restarts: count } : {};
  if (current !== undefined && !restartsAfter(policy, current.exitCode)) return { terminated: current, ...restarts };
  if (!policy.restartable) return undefined;

  const phase = pod.status?.phase;
  if (!deleted && phase !== "Succeeded" && phase !== "Failed") return undefined;
  const last = current ?? (isRecord(status.state?.waiting) ? terminatedOf(status.lastState) : undefined);
  if (last === undefined) return undefined;
  return { terminated: last, ...restarts };
}

/** What decides whether the container runs again: its restart rules and the policy in force. */
export interface RestartPolicy {
  readonly policy: "Always" | "OnFailure" | "Never";
  /** The container's restartPolicyRules: they count only beside a container-level restartPolicy. */
  readonly rules: readonly unknown[];
  /** Some exit can be followed by another run. */
  readonly restartable: boolean;
}

/**
 * The container's own restartPolicy (Kubernetes 1.35+, ContainerRestartRules) with its rules, else
 * the pod's. A pod without a restartPolicy is a hand-written one (the API server always sets it):
 * its current state decides, as with Never.
 */
export function restartPolicy(pod: Pod, container: Container | undefined): RestartPolicy {
  const own = container?.restartPolicy;
  const podPolicy = pod.spec?.restartPolicy;
  const policy = own === "Always" || own === "OnFailure" || own === "Never" ? own : podPolicy === "Always" || podPolicy === "OnFailure" ? podPolicy : "Never";
  const rules = own === policy && Array.isArray(container?.restartPolicyRules) ? (container.restartPolicyRules as unknown[]) : [];
  const restartable = policy !== "Never" || rules.some((rule) => isRecord(rule) && RESTARTS.has(rule.action));
  return { policy, rules, restartable };
}

/**
 * Will the kubelet restart the container after it exited with `exitCode`? As it decides
 * (k8s.io/kubernetes pkg/api/v1/pod ContainerShouldRestart): the first rule whose exit codes match
 * decides (Restart or RestartAllContainers: yes), else the policy in force.
 */
export function restartsAfter({ policy, rules }: RestartPolicy, exitCode: unknown): boolean {
  const rule = matchingRule(rules, exitCode);
  if (rule !== undefined && RESTARTS.has(rule)) return true;
  return policy === "Always" || (policy === "OnFailure" && exitCode !== 0);
}

const RESTARTS: ReadonlySet<unknown> = new Set(["Restart", "RestartAllContainers"]);

/** The action of the first rule whose exitCodes (In / NotIn values) match, or undefined. */
function matchingRule(rules: readonly unknown[], exitCode: unknown): unknown {
  if (typeof exitCode !== "number") return undefined;
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
