// From a Pod object to "report this message" or "ignore, because…". Pure: the table of contents
// of the stages, in the order an event goes through them.
import { selectJob, type JobCriteria } from "./job.js";
import { measurement, type Measurement } from "./measurement.js";
import type { Pod } from "./pod.js";
import { runDuration, terminatedState } from "./termination.js";

export type Assessment =
  | {
      readonly kind: "ignore";
      readonly reason: string;
      /** True for shapes a healthy cluster should not produce: worth a warning, not just debug. */
      readonly odd?: boolean;
    }
  | {
      readonly kind: "report";
      readonly appId: string;
      readonly message: Measurement;
      /** For logs: seconds the job container ran (absent when it never ran). */
      readonly runSeconds?: number;
      readonly exitCode?: number;
    };

export function assessPod(pod: Pod, criteria: JobCriteria): Assessment {
  if (pod.kind !== undefined && pod.kind !== "Pod") return { kind: "ignore", reason: `not a Pod (kind ${String(pod.kind)})` };

  const job = selectJob(pod, criteria);
  if (!job.job) return { kind: "ignore", reason: job.reason };

  const terminated = terminatedState(pod);
  if (terminated === undefined) return { kind: "ignore", reason: "job container has not terminated" };

  const runTime = runDuration(terminated);
  if (runTime.kind === "invalid") return { kind: "ignore", reason: runTime.reason, odd: true };

  return {
    kind: "report",
    appId: job.appId,
    message: measurement(pod, terminated, runTime),
    ...(runTime.kind === "ran" ? { runSeconds: runTime.seconds } : {}),
    ...(typeof terminated.exitCode === "number" ? { exitCode: terminated.exitCode } : {}),
  };
}
