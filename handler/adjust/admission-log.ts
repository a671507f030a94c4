// What the webhook's log says about admissions: one line for each admission that changed a pod,
// was refused an ADJUST, or could not reach Optune; the job pods Optune left as they were (it set
// nothing: the common answer, MEASURE) at debug, summed up in one info line a minute, as the
// function sums up the events it ignores. Skipped pods (not jobs) stay at debug.
import { periodicSummary, type Logger, type LogLevel } from "../edges/log.js";
import type { Admission } from "./admit.js";

export interface AdmissionLog {
  /** Logs one admission. */
  record(admission: Admission, fields: Readonly<Record<string, unknown>>): void;
  /** Writes the summary now, if there is anything to sum up (at shutdown). */
  flush(): void;
  close(): void;
}

/** Optune answered and set nothing: the pod runs as written, and nothing needs a line of its own. */
const leftAlone = (admission: Admission): boolean => admission.result === "unchanged" && admission.refused !== true;

function admissionLevel(admission: Admission): LogLevel {
  return admission.result === "optune-error" ? "warn" : admission.result === "skipped" || leftAlone(admission) ? "debug" : "info";
}

/** The reason and warning can quote Optune (a refused ADJUST names its components): `redacted`. */
export function createAdmissionLog(log: Logger, redacted: (text: string) => string, now: () => number = Date.now): AdmissionLog {
  const summary = periodicSummary<"unchanged">((counts, seconds) => {
    const unchanged = counts.get("unchanged") ?? 0;
    log.info(`${unchanged} job pod${unchanged === 1 ? "" : "s"} admitted unchanged in the last ${seconds} s: Optune set nothing`, { unchanged });
  }, now);
  return {
    record(admission, fields) {
      if (leftAlone(admission)) summary.count("unchanged");
      const level = admissionLevel(admission);
      // Most admissions are logged at debug or summed up: build nothing for a line that is not written.
      if (!log.enabled(level)) return;
      const { patch: _patch, reason, warning, refused: _refused, ...rest } = admission;
      log[level]("pod admitted", { ...fields, ...rest, reason: redacted(reason), ...(warning === undefined ? {} : { warning: redacted(warning) }) });
    },
    flush: summary.flush,
    close: summary.close,
  };
}
