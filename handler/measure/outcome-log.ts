// What the log says about handled events: one line per event that did something (info), warnings
// for odd shapes, and, for the many events that change nothing (ignored, or about a job already
// reported: debug), one info line a minute that sums them up by reason, so a forgotten JOBID env
// var is visible without debug logging, and a busy job's stream of updates costs no line each.
import { retryAfterSeconds, type Outcome, type OutcomeCode } from "./handle.js";
import { periodicSummary, type Logger } from "../edges/log.js";

export interface OutcomeLog {
  /** Logs one handled event. */
  record(outcome: Outcome, fields: Readonly<Record<string, unknown>>): void;
  /** Writes the summary of ignored events now, if there are any (at shutdown). */
  flush(): void;
  close(): void;
}

type SummaryCode = OutcomeCode | "already-reported";

/** Each reason's words in the summary line: a fixed set, never a pod or namespace name. */
function reasonLabels(appIdSpec: string): Record<SummaryCode, string> {
  return {
    "already-reported": "already reported",
    "not-watched": "namespace not watched",
    "no-app-id": `no app id at ${appIdSpec}`,
    "bad-app-id": "app id that cannot be sent",
    "not-finished": "job not finished",
    "not-a-pod": "not a Pod",
    "bad-name": "names that are not pod names",
    "unconfirmed-delete": "deletes of pods never seen finished",
    "not-confirmed": "events the API server's pod contradicts",
    "bad-timestamps": "unreadable timestamps",
    "other-event": "other event types",
    "pod-gone": "pod gone",
    "no-kubernetes": "reference mode without Kubernetes API",
    "no-sweep": "sweep unavailable",
    "claimed-elsewhere": "being reported by another instance",
    "foreign-claim": "claim annotations not written by us",
  };
}

export function createOutcomeLog(log: Logger, appIdSpec: string, now: () => number = Date.now): OutcomeLog {
  const labels = reasonLabels(appIdSpec);
  const summary = periodicSummary<SummaryCode>((counts, seconds) => {
    let total = 0;
    for (const count of counts.values()) total += count;
    const parts = [...counts].sort((a, b) => b[1] - a[1]).map(([code, count]) => `${thousands(count)} ${labels[code]}`);
    log.info(`${thousands(total)} ignored in the last ${seconds} s: ${parts.join(", ")}`, { ignored: Object.fromEntries(counts) });
  }, now);

  return {
    record(outcome, fields) {
      if (outcome.kind === "ignored") summary.count(outcome.code);
      else if (outcome.kind === "already-reported") summary.count("already-reported");
      const level =
        outcome.kind === "deferred" ? "warn"
        : retryAfterSeconds(outcome) !== undefined || outcome.kind === "undeliverable" ? "error"
        : outcome.kind === "malformed" ? "warn"
        : outcome.kind !== "ignored" && outcome.kind !== "already-reported" ? "info"
        : outcome.kind === "ignored" && outcome.odd === true ? "warn"
        : "debug";
      // Most events are ignored at debug: build nothing for a line that is not written.
      if (log.enabled(level)) log[level]("event handled", { ...fields, ...outcome, outcome: outcome.kind, kind: undefined });
    },
    flush: summary.flush,
    close: summary.close,
  };
}

/** 1204 → "1,204" (toLocaleString would start ICU, ~10 ms, at the first summary). */
function thousands(count: number): string {
  return String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
