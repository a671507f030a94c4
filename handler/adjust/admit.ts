// What an admission does (the adjusting half's function, callable without a server): a new job pod
// is tuned by Optune's command loop before it starts; anything else, or any trouble, admits the
// pod unchanged. Never blocks: the only outcomes are "allowed" with or without a patch.
import { jobContainer, selectJob, type JobCriteria } from "../jobs/job.js";
import type { Deliver } from "../edges/optune.js";
import { clip, isRecord, podName, podNamespace, podRef, text, type Pod } from "../jobs/pod.js";
import type { ContainerSettings } from "../jobs/settings-annotation.js";
import type { AdmissionRequest } from "./admission.js";
import { commandLoop } from "./command-loop.js";
import { adjustmentPatch, foreignSettingsPatch, holdPatch, type PatchOperation } from "./patch.js";
import { applyPatch } from "./apply-patch.js";
import type { Ranges } from "./settings.js";
import { admittedRanges, type NamespacePolicies } from "./namespace-bounds.js";

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
  /** Unchanged because Optune's last ADJUST was refused (out of range): worth a line of its own. */
  readonly refused?: true;
}

export interface AdmitDeps {
  readonly criteria: JobCriteria;
  readonly ranges: Ranges;
  readonly budgetMs: number;
  /** The shared Optune client (prints instead of sending in a dry run). */
  readonly deliver: Deliver;
  /**
   * The namespace's LimitRanges and ResourceQuotas, when the webhook can read them: Optune's
   * ranges are narrowed to what the API server will admit. Absent: the configured ranges.
   */
  readonly policies?: (namespace: string) => Promise<NamespacePolicies>;
  /** The measuring half reads cpu_time and max_memory from Prometheus: DESCRIPTION lists them. */
  readonly resourceMetrics?: boolean;
  /** OPTUNE_HOLD is on: every job pod is held (our finalizer) until its MEASUREMENT is sent, whatever Optune answered. */
  readonly hold?: boolean;
}

export type Admitter = (request: AdmissionRequest) => Promise<Admission>;

export function createAdmitter(deps: AdmitDeps): Admitter {
  return async (request) => {
    if (request.resource !== "/pods") return { result: "skipped", reason: `not a pod (${clip(request.resource ?? "no resource", 63)})`, pod: "?/?" };
    if (request.operation !== "CREATE") return { result: "skipped", reason: `operation ${clip(request.operation ?? "none", 16)}, not CREATE`, pod: "?/?" };
    if (!isRecord(request.object)) return { result: "skipped", reason: "the request holds no pod", pod: "?/?" };
    const object = request.object as Pod;
    const admission = stripForeignSettings(object, await admitPod(request, object));
    return deps.hold === true && selectJob(inNamespace(object, request.namespace), deps.criteria).job ? held(object, admission) : admission;
  };

  /** Whatever else happened, a settings annotation this admission did not write does not stay. */
  function stripForeignSettings(object: Pod, admission: Admission): Admission {
    if (admission.result === "adjusted") return admission;
    const strip = foreignSettingsPatch(object);
    return strip.length === 0 ? admission : { ...admission, patch: strip, reason: `${admission.reason}; the optune.ai/settings annotation it was created with was removed` };
  }

  function held(object: Pod, admission: Admission): Admission {
    const patch = admission.patch ?? [];
    const hold = holdPatch(patch.length === 0 ? object : applyPatch(object, patch));
    return hold.length === 0 ? admission : { ...admission, patch: [...patch, ...hold] };
  }

  async function admitPod(request: AdmissionRequest, object: Pod): Promise<Admission> {
    const skip = (reason: string, pod = "?/?", warning?: string): Admission => ({ result: "skipped", reason, pod, ...(warning === undefined ? {} : { warning }) });
    const pod = inNamespace(object, request.namespace);
    // At CREATE a Job's pod has no name yet, only its generateName.
    const ref = podName(pod) === undefined ? `${clip(podNamespace(pod) ?? "?")}/${clip(text(pod.metadata?.generateName) ?? "?")}*` : podRef(pod);
    const job = selectJob(pod, deps.criteria);
    if (!job.job) return skip(job.reason, ref);
    // sideEffects: NoneOnDryRun — a dry run must not reach Optune.
    if (request.dryRun) return skip("dry run: Optune is not asked", ref);
    const component = text(jobContainer(pod)?.name);
    if (component === undefined) return skip("the job container has no name", ref);
    // Pod-level limits (spec.resources, beta in 1.34) bound every container: a setting above them
    // would make the API server refuse the pod after we allowed it.
    if (hasPodLevelResources(pod)) return skip("the pod sets pod-level resources (spec.resources): not tuned", ref, "optune: pod-level resources set; pod admitted unchanged");
    let ranges = deps.ranges;
    if (deps.policies !== undefined) {
      let policies: NamespacePolicies;
      try {
        policies = await deps.policies(podNamespace(pod) ?? "");
      } catch (error) {
        // Unknown limits could make the API server refuse a tuned pod: it runs as it was written.
        return skip(`cannot read the namespace's LimitRanges and ResourceQuotas: ${(error as Error).message}`, ref, "optune: namespace limits unreadable; pod admitted unchanged");
      }
      const admitted = admittedRanges(deps.ranges, policies, pod, component);
      if ("none" in admitted) return skip(admitted.none, ref, clip(`optune: ${admitted.none}; pod admitted unchanged`, 119));
      ranges = admitted.ranges;
    }

    const loop = await commandLoop({
      pod,
      component,
      ranges,
      budgetMs: deps.budgetMs,
      resourceMetrics: deps.resourceMetrics === true,
      exchange: (body, deadlineMs, wantAnswer) => deps.deliver({ appId: job.appId, body, deadlineMs, wantAnswer }),
    });
    const base = { pod: ref, appId: job.appId, commands: loop.commands };
    if (loop.settings !== undefined) {
      const adjusted = { ...base, result: "adjusted" as const, settings: loop.settings, patch: adjustmentPatch(object, loop.settings) };
      // Optune was told they were applied: they are, even though a later question failed.
      return loop.problem === undefined
        ? { ...adjusted, reason: "Optune's settings applied" }
        : { ...adjusted, reason: `Optune's acknowledged settings applied, then Optune ${loop.problem}`, warning: clip(`optune: ${loop.problem} after its settings were applied`, 119) };
    }
    if (loop.problem !== undefined) {
      return { ...base, result: "optune-error", reason: `Optune ${loop.problem}`, warning: clip(`optune: ${loop.problem}; pod admitted unchanged`, 119) };
    }
    const refused = loop.refused.at(-1);
    return refused === undefined ? { ...base, result: "unchanged", reason: "Optune set nothing" } : { ...base, result: "unchanged", reason: `ADJUST refused: ${refused}`, refused: true };
  }
}

function hasPodLevelResources(pod: Pod): boolean {
  const resources = isRecord(pod.spec) ? (pod.spec as Record<string, unknown>).resources : undefined;
  if (!isRecord(resources)) return false;
  return ["limits", "requests"].some((kind) => {
    const map = resources[kind];
    return isRecord(map) && (map.cpu !== undefined || map.memory !== undefined);
  });
}

/** At CREATE the object may not carry its namespace yet; the request names it. */
function inNamespace(pod: Pod, namespace: string | undefined): Pod {
  if (namespace === undefined || text(pod.metadata?.namespace) !== undefined) return pod;
  return { ...pod, metadata: { ...(isRecord(pod.metadata) ? pod.metadata : {}), namespace } };
}
