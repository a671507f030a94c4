// `servo-k8s-multijob invoke [--send] [--cluster] [--to URL] FILE...`: events read from files (or
// `-`, stdin) handled by the same function, in-process, or sent to a running function over HTTP as
// an ApiServerSource sends them (--to, the `func invoke` habit). A file holds a structured
// CloudEvent, a JSON array of them, a Pod, or a List of Pods (`kubectl get pods -o json`), as JSON
// or YAML (`-o yaml`). Every file is read and checked before anything is sent or handled, so bad
// input sends nothing and exits 2.
import type { Readable } from "node:stream";
import type { Config } from "../edges/config.js";
import { readDocuments } from "../edges/input-files.js";
import { clip, isNamespaceName, isRecord } from "../jobs/pod.js";
import { MalformedEvent, structuredEvent, toBinaryRequest, type CloudEvent } from "./cloudevent.js";
import { createFunction } from "./function.js";
import type { Outcome } from "./handle.js";
import { eventNamespace, interpretEvent, podUpdateEvent, type PodEvent } from "./pod-event.js";

export interface FileEvent {
  readonly file: string;
  readonly event: CloudEvent;
  readonly podEvent: PodEvent;
}

export interface InvokeIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  /** Standard input, for the file "-". */
  readonly stdin?: () => Readable;
}

/** Exit codes: 0 all handled, 1 a delivery failed (the server would answer 503), 2 bad input. */
export async function invoke(files: readonly string[], config: Config, io: InvokeIo): Promise<number> {
  const events = await readAll(files, io);
  if (events === undefined) return 2;
  // The files are the operator's own: a delete in them is believed, as an authenticated one would be.
  const fn = createFunction(config, { print: io.stdout, logLine: io.stderr, echo: true, trustedInput: true });
  let failed = false;
  const unwatched = new Map<string, number>();
  try {
    for (const { file, podEvent } of events) {
      let outcome: Outcome;
      try {
        outcome = await fn.handle(podEvent);
      } catch (error) {
        // A defect of ours, not of the input: say so for this event and go on with the others.
        outcome = { kind: "failed", pod: "?", error: `internal error: ${(error as Error).message}`, retryAfterSeconds: 0 };
      }
      failed ||= outcome.kind === "failed" || outcome.kind === "undeliverable";
      const namespace = eventNamespace(podEvent);
      if (outcome.kind === "ignored" && outcome.code === "not-watched" && isNamespaceName(namespace)) unwatched.set(namespace, (unwatched.get(namespace) ?? 0) + 1);
      io.stderr(`${file}: ${describeOutcome(outcome)}\n`);
    }
  } finally {
    fn.close();
  }
  const hint = unwatchedHint(unwatched, config.namespaces);
  if (hint !== undefined) io.stderr(`${hint}\n`);
  return failed ? 1 : 0;
}

/** When pods were left out for their namespace: which namespaces, and how to watch them. */
export function unwatchedHint(unwatched: ReadonlyMap<string, number>, watched: ReadonlySet<string>): string | undefined {
  if (unwatched.size === 0) return undefined;
  const count = [...unwatched.values()].reduce((sum, n) => sum + n, 0);
  const names = [...unwatched.keys()].sort();
  const list = names.map((name) => `${name} (${unwatched.get(name)})`).join(", ");
  const all = [...new Set([...watched, ...names])].join(",");
  return (
    `${count} pod${count === 1 ? " was" : "s were"} left out because ${names.length === 1 ? "its namespace is" : "their namespaces are"} not watched: ${list}. ` +
    `POD_NAMESPACES is ${[...watched].join(",")}; to measure them: POD_NAMESPACES=${all} servo-k8s-multijob invoke ...`
  );
}

/** `--to URL`: each event POSTed in binary mode to a running function; its answer printed. Exit 1 when one is not 2xx. */
export async function invokeRemote(files: readonly string[], url: string, io: InvokeIo): Promise<number> {
  const target = remoteTarget(url);
  if (typeof target === "string") {
    io.stderr(`servo-k8s-multijob: ${target}\n`);
    return 2;
  }
  const events = await readAll(files, io);
  if (events === undefined) return 2;
  let failed = false;
  for (const { file, event } of events) {
    const { headers, body } = toBinaryRequest(event);
    try {
      // A redirect would re-send the whole pod (its env values too) to another server: never followed.
      const response = await fetch(target, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(60_000) });
      const text = clip((await response.text()).trim(), MAX_ANSWER_CHARACTERS);
      if (text !== "") io.stdout(`${text}\n`);
      const retry = response.headers.get("retry-after");
      const location = response.headers.get("location");
      const redirected = response.status >= 300 && response.status < 400;
      io.stderr(
        `${file}: HTTP ${response.status}` +
          (retry === null ? "" : ` (Retry-After ${clip(retry, 16)} s)`) +
          (redirected ? `: a redirect${location === null ? "" : ` to ${JSON.stringify(clip(withoutUserinfo(location), 256))}`}, not followed` : "") +
          "\n",
      );
      failed ||= !response.ok;
    } catch (error) {
      io.stderr(`${file}: cannot reach ${target.href}: ${(error as Error).message}\n`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

/** Answers printed at most this long: a function's answer is a line of JSON. */
const MAX_ANSWER_CHARACTERS = 16_384;

/** The --to URL, or why it cannot be one: http(s) only, and no user:password@ (it would be printed and sent). */
export function remoteTarget(url: string): URL | string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `--to must be an http:// or https:// URL, got ${JSON.stringify(clip(withoutUserinfo(url), 256))}`;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return `--to must be an http:// or https:// URL, got ${parsed.protocol}`;
  if (parsed.username !== "" || parsed.password !== "") return "--to must not hold a user:password@ part (not shown): the function takes no credentials in its URL";
  return parsed;
}

function withoutUserinfo(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, "$1***@");
}

/** Every file read and checked; undefined (problems printed) when any is bad. */
async function readAll(files: readonly string[], io: InvokeIo): Promise<FileEvent[] | undefined> {
  const loaded = await Promise.all(files.map((file) => readEventFile(file, io.stdin)));
  const problems = loaded.filter((result): result is { problem: string } => "problem" in result);
  for (const { problem } of problems) io.stderr(`${problem}\n`);
  return problems.length > 0 ? undefined : loaded.flatMap((result) => ("events" in result ? result.events : []));
}

export async function readEventFile(file: string, stdin?: () => Readable): Promise<{ events: FileEvent[] } | { problem: string }> {
  const input = await readDocuments(file, stdin);
  if ("problem" in input) return input;
  const { name, values } = input;
  try {
    const events = values.flatMap((value) => fileEvents(value, name));
    return { events: events.map((event) => ({ file: name, event, podEvent: interpretEvent(event) })) };
  } catch (error) {
    if (error instanceof MalformedEvent) return { problem: `${name}: ${error.message}` };
    throw error;
  }
}

function fileEvents(value: unknown, file: string): CloudEvent[] {
  if (Array.isArray(value)) return value.map((item, index) => structuredEvent(item, `event ${index}: `));
  if (isRecord(value) && value.specversion === undefined) {
    if (value.kind === "Pod") return [podUpdate(value, file)];
    // kubectl get pods -o json|yaml: a List (its items carry kind Pod), or the API's PodList (they do not).
    if ((value.kind === "List" || value.kind === "PodList") && Array.isArray(value.items)) {
      return value.items.map((item, index) => {
        if (!isRecord(item) || (item.kind !== undefined && item.kind !== "Pod")) throw new MalformedEvent(`item ${index} of the ${value.kind} is not a Pod`);
        return podUpdate({ kind: "Pod", ...item }, `${file}#${index}`);
      });
    }
    throw new MalformedEvent('neither a CloudEvent (no "specversion") nor a Pod or a List of Pods (no "kind": "Pod"/"List")');
  }
  return [structuredEvent(value)];
}

/** A bare Pod is taken as an update, as an ApiServerSource would send it. */
function podUpdate(pod: Record<string, unknown>, file: string): CloudEvent {
  return podUpdateEvent(pod, `file:${file}`, "servo-k8s-multijob/invoke");
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
        `${outcome.ignored} not finished jobs` +
        (outcome.letGo > 0 ? `, ${outcome.letGo} held pods let go` : "") +
        (outcome.lost > 0 ? `, ${outcome.lost} held pods let go unreported (lost)` : "")
      );
  }
}
