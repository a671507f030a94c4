// `servo-k8s-multijob admit [--dry-run] FILE...`: the webhook's admission, in-process, on
// AdmissionReviews or bare Pods read from files. One JSON line per file on stdout: what was
// decided, the settings applied and the patch. Every file is read and checked first.
import { readFile } from "node:fs/promises";
import type { Config } from "../edges/config.js";
import { createLogger } from "../edges/log.js";
import { connectOptune } from "../edges/optune.js";
import { isRecord, podNamespace, type Pod } from "../jobs/pod.js";
import { decodeAdmissionReview, NotAdmissionReview, type AdmissionRequest } from "./admission.js";
import { createAdmitter } from "./admit.js";

export interface AdmitIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
}

/** Exit codes: 0 all admitted, 1 Optune failed us for a pod (the webhook would admit it unchanged), 2 bad input. */
export async function admitFiles(files: readonly string[], config: Config, io: AdmitIo): Promise<number> {
  const loaded = await Promise.all(files.map(readAdmissionFile));
  const problems = loaded.filter((result): result is { problem: string } => "problem" in result);
  if (problems.length > 0) {
    for (const { problem } of problems) io.stderr(`${problem}\n`);
    return 2;
  }
  const log = createLogger(config.logLevel, io.stderr);
  const optune = connectOptune(config, { print: io.stdout, log });
  const admit = createAdmitter({ criteria: config, ranges: config.ranges, budgetMs: config.adjustBudgetMs, deliver: optune.deliver });
  let failed = false;
  try {
    for (const [index, result] of loaded.entries()) {
      if (!("request" in result)) continue;
      const admission = await admit(result.request);
      failed ||= admission.result === "optune-error";
      io.stdout(`${JSON.stringify({ file: files[index], ...admission })}\n`);
    }
  } finally {
    optune.close();
  }
  return failed ? 1 : 0;
}

/** A file holds an AdmissionReview, or a bare Pod (taken as its CREATE). */
export async function readAdmissionFile(file: string): Promise<{ request: AdmissionRequest } | { problem: string }> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    return { problem: `${file}: cannot read it as JSON: ${(error as Error).message}` };
  }
  if (isRecord(value) && value.kind === "Pod") {
    const pod = value as Pod;
    const namespace = podNamespace(pod);
    return { request: { uid: `file:${file}`, operation: "CREATE", resource: "/pods", namespace, dryRun: false, object: pod } };
  }
  try {
    return { request: decodeAdmissionReview(value) };
  } catch (error) {
    if (error instanceof NotAdmissionReview) return { problem: `${file}: neither a Pod nor an AdmissionReview: ${error.message}` };
    throw error;
  }
}
