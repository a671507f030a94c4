// From a Pod object to "report this message" or "ignore, because…". Pure: the table of contents
// of the stages, in the order an event goes through them.
import { selectJob, type JobCriteria, type JobSelection } from "../jobs/job.js";
import { measurement, type Measurement } from "./measurement.js";
import { clip, excerpt, isPodName, type Pod } from "../jobs/pod.js";
import { finishedRun, runDuration } from "./termination.js";
import { disruptionOf, type DisruptionReason } from "./disruption.js";

/** Why a pod is not reported, as a small fixed set: for the ignored-events summary and metrics. */
export type IgnoreCode = Extract<JobSelection, { job: false }>["code"] | "not-a-pod" | "bad-name" | "not-finished" | "bad-timestamps";

export type Assessment =
  | {
      readonly kind: "ignore";
      readonly code: IgnoreCode;
      readonly reason: string;
      /** True for shapes a healthy cluster should not produce: worth a warning, not just debug. */
      readonly odd?: true;
    }
  | {
      readonly kind: "report";
      readonly appId: string;
      /** The MEASUREMENT, built only when it is to be sent (most events for a job come after it was). */
      readonly message: () => Measurement;
      /** For logs: seconds the job container ran (absent when it never ran). */
      readonly runSeconds?: number;
      readonly exitCode?: number;
      /** The run was cut short from outside (disruption.ts): reported marked, counted apart. */
      readonly disrupted?: DisruptionReason;
    };

/** `deleted`: the event says the pod is gone, so a container that restarts will not run again. */
export function assessPod(pod: Pod, criteria: JobCriteria, deleted = false): Assessment {
  if (pod.kind !== undefined && pod.kind !== "Pod") return { kind: "ignore", code: "not-a-pod", reason: `not a Pod (kind ${typeof pod.kind === "string" ? clip(pod.kind, 64) : excerpt(pod.kind)})` };

  const job = selectJob(pod, criteria);
  if (!job.job) return { kind: "ignore", code: job.code, reason: job.reason, ...(job.odd ? { odd: true } : {}) };
  // A claim is written to pods/{name}: a name the API server would never give ("", ".", "..") is not a pod's.
  if (!isPodName(pod.metadata?.name)) return { kind: "ignore", code: "bad-name", reason: `the pod's name ${excerpt(pod.metadata?.name)} is not a pod name`, odd: true };

  const run = finishedRun(pod, deleted);
  if (run === undefined) return { kind: "ignore", code: "not-finished", reason: "job container has not finished" };

  const runTime = runDuration(run.terminated);
  if (runTime.kind === "invalid") return { kind: "ignore", code: "bad-timestamps", reason: runTime.reason, odd: true };

  const exitCode = run.terminated.exitCode;
  const disrupted = disruptionOf(pod, run.terminated);
  return {
    kind: "report",
    appId: job.appId,
    message: () => measurement(pod, run, runTime, disrupted),
    ...(runTime.kind === "ran" ? { runSeconds: runTime.seconds } : {}),
    ...(Number.isSafeInteger(exitCode) ? { exitCode: exitCode as number } : {}),
    ...(disrupted === undefined ? {} : { disrupted }),
  };
}
