// What the webhook's log says about admissions: one line for each admission that changed a pod,
// was refused an ADJUST, or could not reach Optune; the job pods Optune left as they were (it set
// nothing: the common answer, MEASURE) at debug, summed up in one info line a minute, as the
// function sums up the events it ignores. Skipped pods (not jobs) stay at debug.
import type { Logger, LogLevel } from "../edges/log.js";
import type { Admission } from "./admit.js";

export const SUMMARY_INTERVAL_MS = 60_000;

export interface AdmissionLog {
  /** Logs one admission. */
  record(admission: Admission, fields: Readonly<Record<string, unknown>>): void;
  /** Writes the summary now, if there is anything to sum up (at shutdown). */
  flush(): void;
  close(): void;
}

/** Optune answered and set nothing: the pod runs as written, and nothing needs a line of its own. */
export const leftAlone = (admission: Admission): boolean => admission.result === "unchanged" && admission.refused !== true;

export function admissionLevel(admission: Admission): LogLevel {
  return admission.result === "optune-error" ? "warn" : admission.result === "skipped" || leftAlone(admission) ? "debug" : "info";
}

/** The reason and warning can quote Optune (a refused ADJUST names its components): `redacted`. */
export function createAdmissionLog(log: Logger, redacted: (text: string) => string, now: () => number = Date.now): AdmissionLog {
  let unchanged = 0;
  let since = now();
  const flush = () => {
    if (unchanged > 0) {
      const seconds = Math.max(1, Math.round((now() - since) / 1000));
      log.info(`${unchanged} job pod${unchanged === 1 ? "" : "s"} admitted unchanged in the last ${seconds} s: Optune set nothing`, { unchanged });
    }
    unchanged = 0;
    since = now();
  };
  const timer = setInterval(flush, SUMMARY_INTERVAL_MS).unref();
  return {
    record(admission, fields) {
      if (leftAlone(admission)) unchanged++;
      const level = admissionLevel(admission);
      // Most admissions are logged at debug or summed up: build nothing for a line that is not written.
      if (!log.enabled(level)) return;
      const { patch: _patch, reason, warning, refused: _refused, ...rest } = admission;
      log[level]("pod admitted", { ...fields, ...rest, reason: redacted(reason), ...(warning === undefined ? {} : { warning: redacted(warning) }) });
    },
    flush,
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
