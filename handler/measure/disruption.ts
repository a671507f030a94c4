// Was the run cut short from outside? A pod preempted, evicted or killed by the kubelet gets the
// DisruptionTarget condition (reasons PreemptionByScheduler, EvictionByEvictionAPI,
// TerminationByKubelet, DeletionByTaintManager, DeletionByPodGC); the kubelet fails a pod past its
// activeDeadlineSeconds with reason DeadlineExceeded; and a Job suspended, past its own
// activeDeadlineSeconds, past its backoff limit or done by its successPolicy deletes its running
// pods, whose containers then end with 137 or 143 after the deletion began. Such a run says
// nothing about how long the job takes: it is reported marked (no perf), never as a sample.
import { isRecord, type Pod, type TerminatedState } from "../jobs/pod.js";
import { parseTimestamp } from "./termination.js";

/** The reasons counted in /metrics: a fixed set, anything else is "other". */
export const DISRUPTION_REASONS = ["PreemptionByScheduler", "EvictionByEvictionAPI", "TerminationByKubelet", "DeletionByTaintManager", "DeletionByPodGC", "DeadlineExceeded", "DeletedWhileRunning", "other"] as const;
export type DisruptionReason = (typeof DISRUPTION_REASONS)[number];

export function disruptionOf(pod: Pod, terminated: TerminatedState): DisruptionReason | undefined {
  const conditions = Array.isArray(pod.status?.conditions) ? (pod.status.conditions as unknown[]) : [];
  const target = conditions.find((condition) => isRecord(condition) && condition.type === "DisruptionTarget" && condition.status === "True");
  if (isRecord(target)) return known(target.reason);
  if (pod.status?.reason === "DeadlineExceeded") return "DeadlineExceeded";
  if (killedByDeletion(pod, terminated)) return "DeletedWhileRunning";
  return undefined;
}

/** Killed (137 SIGKILL, 143 SIGTERM) at or after the moment its deletion began. */
function killedByDeletion(pod: Pod, terminated: TerminatedState): boolean {
  if (terminated.exitCode !== 137 && terminated.exitCode !== 143) return false;
  const deletion = parseTimestamp(pod.metadata?.deletionTimestamp);
  const finished = parseTimestamp(terminated.finishedAt);
  if (deletion === undefined || finished === undefined) return false;
  // deletionTimestamp is when the grace period ends; the deletion began that long before.
  const grace = pod.metadata?.deletionGracePeriodSeconds;
  const began = deletion - (typeof grace === "number" && grace >= 0 ? grace * 1000 : 0);
  return finished >= began;
}

function known(reason: unknown): DisruptionReason {
  return (DISRUPTION_REASONS as readonly unknown[]).includes(reason) ? (reason as DisruptionReason) : "other";
}
