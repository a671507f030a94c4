// `servo-k8s-multijob admit [--dry-run] [--adjust cpu=1.5,mem=512Mi] FILE...`: the webhook's
// admission, in-process, on new Pods, Lists of them or AdmissionReviews read from files (`-` is
// stdin; JSON or YAML). One JSON line per pod on stdout: what was decided, the settings applied,
// the JSON Patch, and the job container's resources before and after it; one line per pod on
// stderr in words. Every file is read and checked first: bad input asks no one and exits 2.
import type { Readable } from "node:stream";
import { holdsPods, type Config } from "../edges/config.js";
import { readDocuments } from "../edges/input-files.js";
import { createLogger } from "../edges/log.js";
import { connectOptune, type Deliver } from "../edges/optune.js";
import { jobContainer } from "../jobs/job.js";
import { isRecord, podNamespace, type Pod } from "../jobs/pod.js";
import { decodeAdmissionReview, NotAdmissionReview, type AdmissionRequest } from "./admission.js";
import { createAdmitter, type Admission } from "./admit.js";
import { applyPatch } from "./apply-patch.js";
import { sampleOptune, type SampleSettings } from "./sample-answers.js";

export interface AdmitIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  /** Standard input, for the file "-". */
  readonly stdin?: () => Readable;
}

export interface AdmitOptions {
  /** A dry run in which Optune's answers are scripted to ADJUST to these settings. */
  readonly sample?: SampleSettings;
}

interface FileRequest {
  readonly file: string;
  readonly request: AdmissionRequest;
}

/** Exit codes: 0 all admitted, 1 Optune failed us for a pod (the webhook would admit it unchanged), 2 bad input. */
export async function admitFiles(files: readonly string[], config: Config, io: AdmitIo, options: AdmitOptions = {}): Promise<number> {
  const loaded = await Promise.all(files.map((file) => readAdmissionFile(file, io.stdin)));
  const problems = loaded.filter((result): result is { problem: string } => "problem" in result);
  if (problems.length > 0) {
    for (const { problem } of problems) io.stderr(`${problem}\n`);
    return 2;
  }
  const requests = loaded.flatMap((result) => ("requests" in result ? result.requests : []));
  const log = createLogger(config.logLevel, io.stderr);
  const optune = connectOptune(config, { print: io.stdout, log });
  const admitter = (deliver: Deliver) => createAdmitter({ criteria: config, ranges: config.ranges, budgetMs: config.adjustBudgetMs, deliver, hold: holdsPods(config) });
  const shared = admitter(optune.deliver);
  let failed = false;
  try {
    for (const { file, request } of requests) {
      // Each pod gets its own scripted conversation.
      const admit = options.sample === undefined ? shared : admitter(answering(optune.deliver, sampleOptune(options.sample)));
      const admission = await admit(request);
      failed ||= admission.result === "optune-error";
      const resources = request.object === undefined ? undefined : resourcesBeforeAfter(request.object as Pod, admission);
      io.stdout(`${JSON.stringify({ file, ...admission, ...(resources === undefined ? {} : { resources }) })}\n`);
      io.stderr(`${file}: ${describeAdmission(admission, resources)}${hint(config, options, admission)}\n`);
    }
  } finally {
    optune.close();
  }
  return failed ? 1 : 0;
}

/** A printing (dry-run) deliver whose messages get the scripted answers. */
function answering(deliver: Deliver, answer: ReturnType<typeof sampleOptune>): Deliver {
  return async (message) => {
    const result = await deliver(message);
    const text = answer(message.body as { event?: unknown; param?: unknown });
    return result.ok && text !== undefined ? { ...result, answer: text } : result;
  };
}

type Resources = { readonly container: string; readonly before: unknown; readonly after: unknown };

/** The job container's resources before and after the patch (when it changed them). */
export function resourcesBeforeAfter(pod: Pod, admission: Admission): Resources | undefined {
  if (admission.patch === undefined || admission.result !== "adjusted") return undefined;
  const before = jobContainer(pod);
  const after = jobContainer(applyPatch(pod, admission.patch));
  if (before?.name === undefined) return undefined;
  return { container: String(before.name), before: before.resources ?? {}, after: after?.resources ?? {} };
}

function describeAdmission(admission: Admission, resources: Resources | undefined): string {
  const head = `${admission.result} ${admission.pod}: ${admission.reason}`;
  if (resources === undefined) return head;
  return `${head}\n  ${resources.container} resources before: ${JSON.stringify(resources.before)}\n  ${resources.container} resources after:  ${JSON.stringify(resources.after)}`;
}

function hint(config: Config, options: AdmitOptions, admission: Admission): string {
  if (!config.dryRun || options.sample !== undefined || admission.result !== "unchanged") return "";
  return "\n  (a dry run asks no one, so Optune's answer is taken as MEASURE: --adjust cpu=1.5,mem=512Mi shows what an ADJUST does)";
}

/** A file holds an AdmissionReview, a new Pod (taken as its CREATE) or a List of them; JSON or YAML. */
export async function readAdmissionFile(file: string, stdin?: () => Readable): Promise<{ requests: FileRequest[] } | { problem: string }> {
  const input = await readDocuments(file, stdin);
  if ("problem" in input) return input;
  const requests: FileRequest[] = [];
  for (const value of input.values) {
    const found = admissionRequests(value, input.name);
    if (typeof found === "string") return { problem: `${input.name}: ${found}` };
    requests.push(...found.map((request) => ({ file: input.name, request })));
  }
  return { requests };
}

function admissionRequests(value: unknown, file: string): AdmissionRequest[] | string {
  if (isRecord(value) && value.specversion !== undefined) return "a CloudEvent, which is what the function takes: give it to invoke. admit takes new Pods or AdmissionReviews";
  if (isRecord(value) && value.kind === "Pod") return [podCreate(value as Pod, file)];
  if (isRecord(value) && (value.kind === "List" || value.kind === "PodList") && Array.isArray(value.items)) {
    const requests: AdmissionRequest[] = [];
    for (const [index, item] of value.items.entries()) {
      if (!isRecord(item) || (item.kind !== undefined && item.kind !== "Pod")) return `item ${index} of the ${value.kind} is not a Pod`;
      requests.push(podCreate({ kind: "Pod", ...item } as Pod, `${file}#${index}`));
    }
    return requests;
  }
  try {
    return [decodeAdmissionReview(value)];
  } catch (error) {
    if (error instanceof NotAdmissionReview) return `neither a Pod nor an AdmissionReview: ${error.message}`;
    throw error;
  }
}

function podCreate(pod: Pod, file: string): AdmissionRequest {
  return { uid: `file:${file}`, operation: "CREATE", resource: "/pods", namespace: podNamespace(pod), dryRun: false, object: pod };
}
