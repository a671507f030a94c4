// The Optune MEASUREMENT for a finished job (SPEC.md section 4).
import { podRef, type Pod, type TerminatedState } from "./pod.js";
import { jobContainer, parseTimestamp, type RunTime } from "./termination.js";

export interface Metric {
  readonly value: number;
  readonly unit: string;
}

export type MeasurementParam =
  | {
      readonly metrics: Readonly<Record<string, Metric>>;
      readonly annotations: Readonly<Record<string, string | number | null>>;
    }
  | { readonly status: "failed"; readonly message: string };

export interface Measurement {
  readonly event: "MEASUREMENT";
  readonly param: MeasurementParam;
}

export const NEVER_RAN: Measurement = Object.freeze({
  event: "MEASUREMENT",
  param: Object.freeze({ status: "failed", message: "job deleted before it ran" }),
});

export function measurement(pod: Pod, terminated: TerminatedState, runTime: Exclude<RunTime, { kind: "invalid" }>): Measurement {
  if (runTime.kind === "never-ran") return NEVER_RAN;
  return { event: "MEASUREMENT", param: { metrics: metrics(pod, runTime.seconds), annotations: annotations(pod, terminated) } };
}

function metrics(pod: Pod, seconds: number): Record<string, Metric> {
  const result: Record<string, Metric> = { duration: { value: seconds, unit: "s" } };
  // The service requires a metric named perf; 1/0 has no value, so a 0 s job has none.
  if (seconds > 0) result.perf = { value: 1 / seconds, unit: "1/s" };
  const estimate = estDuration(pod);
  if (estimate !== undefined) result.est_duration = { value: estimate, unit: "s" };
  return result;
}

function annotations(pod: Pod, terminated: TerminatedState): Record<string, string | number | null> {
  const result: Record<string, string | number | null> = {
    resources: JSON.stringify(jobContainer(pod)?.resources ?? {}),
    exitcode: typeof terminated.exitCode === "number" ? terminated.exitCode : null,
  };
  if (typeof terminated.reason === "string") result.reason = terminated.reason;
  result.pod = podRef(pod);
  if (typeof pod.metadata?.uid === "string") result.uid = pod.metadata.uid;
  return result;
}

const EPOCH_SECONDS = /^\s*[+-]?[0-9]+\s*$/;

/** The `done-at` annotation (epoch seconds, an integer) minus the pod's creation time, in seconds. */
export function estDuration(pod: Pod): number | undefined {
  const doneAt = pod.metadata?.annotations?.["done-at"];
  const created = parseTimestamp(pod.metadata?.creationTimestamp);
  if (typeof doneAt !== "string" || !EPOCH_SECONDS.test(doneAt) || created === undefined) return undefined;
  return Number.parseInt(doneAt, 10) - Math.floor(created / 1000);
}
