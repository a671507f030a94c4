// `servo-k8s-multijob release`: lets go of every pod our finalizer holds, for an uninstall (the
// function that would report them is going away) or an operator who wants them gone now. Lists
// the pods of every namespace (or the ones given), so it needs no install flags.
import { ALL_NAMESPACES, KubernetesError, type PodApi } from "../edges/kubernetes.js";
export { ALL_NAMESPACES };
import { podName, podNamespace, podRef, type Pod } from "../jobs/pod.js";
import { claimState } from "./claim.js";
import { isHeld, unholdPatch } from "./hold.js";
import { finishedRun } from "./termination.js";

export interface ReleaseSummary {
  readonly held: number;
  readonly released: number;
  /** Held pods whose finished run Optune never got: their MEASUREMENT is lost. */
  readonly unreported: number;
  readonly failed: number;
}

export interface ReleaseDeps {
  readonly api: PodApi;
  /** Namespaces to look in; ALL_NAMESPACES for every one. */
  readonly namespaces: readonly string[];
  /** Lists the held pods, writes nothing. */
  readonly dryRun: boolean;
  /** One line per held pod. */
  readonly say: (line: string) => void;
}

const PAGE_SIZE = 500;
/** Conflicts in a row on one pod before it is counted failed (run release again). */
const ATTEMPTS = 4;

export async function releaseHeld(deps: ReleaseDeps): Promise<ReleaseSummary> {
  const counts = { held: 0, released: 0, unreported: 0, failed: 0 };
  for (const namespace of deps.namespaces) {
    let next: string | undefined;
    do {
      const page = await deps.api.list(namespace, { limit: PAGE_SIZE, ...(next === undefined ? {} : { continue: next }) });
      for (const pod of page.items.filter(isHeld)) {
        counts.held++;
        const unreported = claimState(pod).kind !== "sent" && finishedRun(pod) !== undefined;
        if (deps.dryRun) {
          deps.say(`held: ${podRef(pod)}${unreported ? " (finished, not reported)" : ""}`);
          continue;
        }
        if (await letGo(deps.api, pod)) {
          counts.released++;
          if (unreported) counts.unreported++;
          deps.say(`released: ${podRef(pod)}${unreported ? " (its MEASUREMENT was not sent)" : ""}`);
        } else {
          counts.failed++;
          deps.say(`not released: ${podRef(pod)} kept changing; run release again`);
        }
      }
      next = page.continue;
    } while (next !== undefined);
  }
  return counts;
}

/** Removes our finalizer; after a conflict reads the pod again. False when it kept conflicting. */
async function letGo(api: PodApi, first: Pod): Promise<boolean> {
  const namespace = podNamespace(first) ?? "";
  const name = podName(first) ?? "";
  let pod: Pod | undefined = first;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (pod === undefined || !isHeld(pod)) return true;
    try {
      await api.patch(namespace, name, unholdPatch(pod));
      return true;
    } catch (error) {
      if (error instanceof KubernetesError && error.status === 404) return true;
      if (!(error instanceof KubernetesError && error.status === 409)) throw error;
      pod = await api.read(namespace, name);
    }
  }
  return false;
}

