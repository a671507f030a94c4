// The Optune MEASUREMENT for a finished job (SPEC.md section 4). Every number in it is a
// non-negative integer or is left out: NaN, Infinity or a fraction never reaches Optune.
import { isCount, isRecord, podAnnotation, podRef, podUid, text, type Container, type Pod, type TerminatedState } from "../jobs/pod.js";
import { jobContainer } from "../jobs/job.js";
import { ranWith } from "../jobs/ran-with.js";
import type { DisruptionReason } from "./disruption.js";
import { readSettings } from "../jobs/settings-annotation.js";
import { parseTimestamp, type FinishedRun, type RunTime } from "./termination.js";

export interface Metric {
  readonly value: number;
  readonly unit: string;
}

export type MeasurementParam =
  | {
      readonly metrics: Readonly<Record<string, Metric>>;
      readonly annotations: Readonly<Record<string, string | number>>;
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

/** `disrupted`: the run was cut short from outside (disruption.ts, judged once by the assessment). */
export function measurement(pod: Pod, run: FinishedRun, runTime: Exclude<RunTime, { kind: "invalid" }>, disrupted?: DisruptionReason): Measurement {
  if (runTime.kind === "never-ran") return NEVER_RAN;
  return { event: "MEASUREMENT", param: { metrics: metrics(pod, runTime.seconds, disrupted !== undefined), annotations: annotations(pod, run, disrupted) } };
}

function metrics(pod: Pod, seconds: number, disrupted: boolean): Record<string, Metric> {
  const result: Record<string, Metric> = { duration: { value: seconds, unit: "s" } };
  // The service requires a metric named perf; 1/0 has no value, so a 0 s job has none; nor has a
  // run cut short from outside (preempted, evicted, killed by its Job): it is no performance sample.
  if (seconds > 0 && !disrupted) result.perf = { value: 1 / seconds, unit: "1/s" };
  const estimate = estDuration(pod);
  if (estimate !== undefined) result.est_duration = { value: estimate, unit: "s" };
  return result;
}

function annotations(pod: Pod, run: FinishedRun, disrupted: string | undefined): Record<string, string | number> {
  const terminated: TerminatedState = run.terminated;
  const container = jobContainer(pod);
  // What the container had (its status's after an in-place resize), and the spec's when they differ.
  const had = ranWith(pod, container);
  const result: Record<string, string | number> = { resources: JSON.stringify(containerResources({ resources: had.resources })) };
  if (had.requested !== undefined) {
    result.resources_requested = JSON.stringify(containerResources({ resources: had.requested }));
    result.resize = had.pendingReason === undefined ? "pending" : `pending: ${had.pendingReason}`;
  } else if (had.specChanged) {
    result.resize = "during the run: the resources are the final ones";
  }
  // Pod-level resources (1.34+): the budget the whole pod ran under.
  if (isRecord(pod.spec?.resources)) result.pod_resources = JSON.stringify(containerResources({ resources: pod.spec.resources }));
  if (disrupted !== undefined) result.disrupted = disrupted;
  if (Number.isSafeInteger(terminated.exitCode)) result.exitcode = terminated.exitCode as number;
  const reason = text(terminated.reason);
  if (reason !== undefined) result.reason = reason;
  result.pod = podRef(pod);
  const uid = podUid(pod);
  if (uid !== undefined) result.uid = uid;
  if (run.restarts !== undefined) result.restarts = run.restarts;
  // What the run ran with, when Optune's settings were applied at admission: Optune pairs it with
  // the run time. Settings that are not what the container had are not sent, and that is said.
  const settings = readSettings(pod);
  if (settings !== undefined && "text" in settings) result.settings = settings.text;
  else if (settings !== undefined) result.settings_dropped = settings.disagreement;
  return result;
}

/**
 * What a container's `resources` can hold, copied: `limits` and `requests` maps of quantity
 * strings, and `claims` (`{name, request?}`). Anything else in an event is dropped, so a hostile
 * pod cannot make the annotation deep or odd.
 */
export function containerResources(container: Container | undefined): Record<string, unknown> {
  const resources = container?.resources;
  const result: Record<string, unknown> = {};
  if (!isRecord(resources)) return result;
  for (const key of Object.keys(resources)) {
    const value = resources[key];
    if ((key === "limits" || key === "requests") && isRecord(value)) result[key] = quantities(value);
    else if (key === "claims" && Array.isArray(value)) result[key] = value.flatMap(resourceClaim);
  }
  return result;
}

function quantities(map: Record<string, unknown>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, quantity] of Object.entries(map)) if (typeof quantity === "string") result[name] = quantity;
  return result;
}

function resourceClaim(claim: unknown): Array<{ name: string; request?: string }> {
  if (!isRecord(claim) || typeof claim.name !== "string") return [];
  return [{ name: claim.name, ...(typeof claim.request === "string" ? { request: claim.request } : {}) }];
}

const EPOCH_SECONDS = /^\s*[0-9]{1,12}\s*$/;

/** The `done-at` annotation (epoch seconds, an integer) minus the pod's creation time, in seconds; never negative. */
export function estDuration(pod: Pod): number | undefined {
  const doneAt = podAnnotation(pod, "done-at");
  const created = parseTimestamp(pod.metadata?.creationTimestamp);
  if (doneAt === undefined || !EPOCH_SECONDS.test(doneAt) || created === undefined) return undefined;
  const seconds = Number.parseInt(doneAt, 10) - Math.floor(created / 1000);
  return isCount(seconds) ? seconds : undefined;
}

/** The MEASUREMENT with a run's resource usage added (cpu_time, max_memory and how they were read). */
export function withUsage(message: Measurement, usage: { readonly metrics: Readonly<Record<string, Metric>>; readonly annotations: Readonly<Record<string, string | number>> } | undefined): Measurement {
  if (usage === undefined || "status" in message.param) return message;
  return { event: "MEASUREMENT", param: { metrics: { ...message.param.metrics, ...usage.metrics }, annotations: { ...message.param.annotations, ...usage.annotations } } };
}
