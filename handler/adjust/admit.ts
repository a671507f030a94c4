// What an admission does (the adjusting half's function, callable without a server): a new job pod
// is tuned by Optune's command loop before it starts; anything else, or any trouble, admits the
// pod unchanged. Never blocks: the only outcomes are "allowed" with or without a patch.
import { jobContainer, selectJob, type JobCriteria } from "../job.js";
import type { Deliver } from "../optune.js";
import { clip, isRecord, podName, podNamespace, podRef, text, type Pod } from "../pod.js";
import type { ContainerSettings } from "../settings-annotation.js";
import type { AdmissionRequest } from "./admission.js";
import { commandLoop } from "./command-loop.js";
import { adjustmentPatch, type PatchOperation } from "./patch.js";
import type { Ranges } from "./settings.js";

/** How an admission ended, as a small fixed set (for logs and metrics). */
export type AdmissionResult =
  /** Not a job pod being created, or a dry run: Optune was not asked. */
  | "skipped"
  /** Optune was asked and set nothing (MEASURE, or its ADJUST was refused). */
  | "unchanged"
  | "adjusted"
  /** Optune down, slow or answering garbage, or the budget spent: admitted unchanged with a warning. */
  | "optune-error";

export interface Admission {
  readonly result: AdmissionResult;
  readonly reason: string;
  readonly pod: string;
  readonly appId?: string;
  readonly settings?: readonly ContainerSettings[];
  readonly patch?: readonly PatchOperation[];
  /** For the AdmissionReview's warnings (under 120 characters). */
  readonly warning?: string;
  readonly commands?: readonly string[];
}

export interface AdmitDeps {
  readonly criteria: JobCriteria;
  readonly ranges: Ranges;
  readonly budgetMs: number;
  /** The shared Optune client (prints instead of sending in a dry run). */
  readonly deliver: Deliver;
}

export type Admitter = (request: AdmissionRequest) => Promise<Admission>;

export function createAdmitter(deps: AdmitDeps): Admitter {
  return async (request) => {
    const skip = (reason: string, pod = "?/?"): Admission => ({ result: "skipped", reason, pod });
    if (request.resource !== "/pods") return skip(`not a pod (${clip(request.resource ?? "no resource", 63)})`);
    if (request.operation !== "CREATE") return skip(`operation ${clip(request.operation ?? "none", 16)}, not CREATE`);
    if (!isRecord(request.object)) return skip("the request holds no pod");
    const pod = inNamespace(request.object as Pod, request.namespace);
    // At CREATE a Job's pod has no name yet, only its generateName.
    const ref = podName(pod) === undefined ? `${clip(podNamespace(pod) ?? "?")}/${clip(text(pod.metadata?.generateName) ?? "?")}*` : podRef(pod);
    const job = selectJob(pod, deps.criteria);
    if (!job.job) return skip(job.reason, ref);
    // sideEffects: NoneOnDryRun — a dry run must not reach Optune.
    if (request.dryRun) return skip("dry run: Optune is not asked", ref);
    const component = text(jobContainer(pod)?.name);
    if (component === undefined) return skip("the job container has no name", ref);

    const loop = await commandLoop({
      pod,
      component,
      ranges: deps.ranges,
      budgetMs: deps.budgetMs,
      exchange: (body, deadlineMs, wantAnswer) => deps.deliver({ appId: job.appId, body, deadlineMs, wantAnswer }),
    });
    const base = { pod: ref, appId: job.appId, commands: loop.commands };
    if (loop.problem !== undefined) {
      return { ...base, result: "optune-error", reason: `Optune ${loop.problem}`, warning: clip(`optune: ${loop.problem}; pod admitted unchanged`, 119) };
    }
    if (loop.settings === undefined) {
      const refused = loop.refused.at(-1);
      return { ...base, result: "unchanged", reason: refused === undefined ? "Optune set nothing" : `ADJUST refused: ${refused}` };
    }
    return { ...base, result: "adjusted", reason: "Optune's settings applied", settings: loop.settings, patch: adjustmentPatch(request.object as Pod, loop.settings) };
  };
}

/** At CREATE the object may not carry its namespace yet; the request names it. */
function inNamespace(pod: Pod, namespace: string | undefined): Pod {
  if (namespace === undefined || text(pod.metadata?.namespace) !== undefined) return pod;
  return { ...pod, metadata: { ...(isRecord(pod.metadata) ? pod.metadata : {}), namespace } };
}
