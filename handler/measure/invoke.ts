// `servo-k8s-multijob invoke [--dry-run] FILE...`: the same handler, in-process, on events read
// from files. Every file is read and checked before anything is sent, so bad input sends nothing.
import { readFile } from "node:fs/promises";
import { MalformedEvent, structuredEvent, type CloudEvent } from "./cloudevent.js";
import type { Config } from "../config.js";
import { createFunction } from "./function.js";
import type { Outcome } from "./handle.js";
import { isRecord } from "../pod.js";
import { interpretEvent, type PodEvent } from "./pod-event.js";

export interface FileEvent {
  readonly file: string;
  readonly event: CloudEvent;
  readonly podEvent: PodEvent;
}

export interface InvokeIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
}

/** Exit codes: 0 all handled, 1 a delivery failed (the server would answer 503), 2 bad input. */
export async function invoke(files: readonly string[], config: Config, io: InvokeIo): Promise<number> {
  const loaded = await Promise.all(files.map(readEventFile));
  const problems = loaded.filter((result): result is { problem: string } => "problem" in result);
  if (problems.length > 0) {
    for (const { problem } of problems) io.stderr(`${problem}\n`);
    return 2;
  }

  const fn = createFunction(config, { print: io.stdout, logLine: io.stderr, echo: true });
  let failed = false;
  for (const { file, podEvent } of loaded.flatMap((result) => ("events" in result ? result.events : []))) {
    let outcome: Outcome;
    try {
      outcome = await fn.handle(podEvent);
    } catch (error) {
      // A defect of ours, not of the input: say so for this event and go on with the others.
      outcome = { kind: "failed", pod: "?", error: `internal error: ${(error as Error).message}`, retryAfterSeconds: 0 };
    }
    failed ||= outcome.kind === "failed" || outcome.kind === "undeliverable";
    io.stderr(`${file}: ${describeOutcome(outcome)}\n`);
  }
  return failed ? 1 : 0;
}

/** A file holds a structured CloudEvent, a JSON array of them, or a bare Pod (taken as an update). */
export async function readEventFile(file: string): Promise<{ events: FileEvent[] } | { problem: string }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    return { problem: `${file}: cannot read: ${(error as Error).message}` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { problem: `${file}: not valid JSON: ${(error as Error).message}` };
  }
  try {
    const events = fileEvents(value, file);
    return { events: events.map((event) => ({ file, event, podEvent: interpretEvent(event) })) };
  } catch (error) {
    if (error instanceof MalformedEvent) return { problem: `${file}: ${error.message}` };
    throw error;
  }
}

function fileEvents(value: unknown, file: string): CloudEvent[] {
  if (Array.isArray(value)) return value.map((item, index) => structuredEvent(item, `event ${index}: `));
  if (isRecord(value) && value.specversion === undefined && value.kind === "Pod") {
    return [{ specversion: "1.0", id: `file:${file}`, source: "servo-k8s-multijob/invoke", type: "dev.knative.apiserver.resource.update", data: value }];
  }
  if (isRecord(value) && value.specversion === undefined) {
    throw new MalformedEvent('neither a CloudEvent (no "specversion") nor a Pod (no "kind": "Pod")');
  }
  return [structuredEvent(value)];
}

export function describeOutcome(outcome: Outcome): string {
  switch (outcome.kind) {
    case "sent": {
      const ran = outcome.runSeconds === undefined ? "never ran" : `ran ${outcome.runSeconds} s`;
      const exit = outcome.exitCode === undefined ? "" : `, exit code ${outcome.exitCode}`;
      return `${outcome.dryRun === true ? "printed, not sent (dry run)" : "sent"}: ${outcome.pod} (app ${outcome.appId}, ${ran}${exit})`;
    }
    case "already-reported":
      return `already reported: ${outcome.pod} (${outcome.reason})`;
    case "ignored":
      return `ignored: ${outcome.pod === undefined ? "" : `${outcome.pod}: `}${outcome.reason}`;
    case "deferred":
      return `deferred: ${outcome.pod} (app ${outcome.appId}): ${outcome.reason}`;
    case "failed":
      return `FAILED: ${outcome.pod}${outcome.appId === undefined ? "" : ` (app ${outcome.appId})`}: ${outcome.error}`;
    case "undeliverable":
      return `NOT SENT: ${outcome.pod} (app ${outcome.appId}): ${outcome.error}`;
    case "malformed":
      return `malformed: ${outcome.error}`;
    case "swept":
      return (
        `swept ${outcome.namespaces.join(", ")}: ${outcome.scanned} pods scanned, ${outcome.reported} reported, ` +
        `${outcome.alreadyReported} already reported, ${outcome.failed} failed, ${outcome.deferred} deferred, ${outcome.tooOld} finished too long ago, ` +
        `${outcome.ignored} not finished jobs`
      );
  }
}
