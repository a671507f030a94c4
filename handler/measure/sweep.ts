// The sweep: the event stream loses changes made while the ApiServerSource's watch reconnects,
// so a periodic pass (a PingSource event, or `servo-k8s-multijob sweep`) lists the pods of every
// watched namespace and reports each recently finished job that no claim says is reported.
import type { Outcome } from "./handle.js";
import { KubernetesError, type PodApi } from "../edges/kubernetes.js";
import type { Pod } from "../jobs/pod.js";
import { finishedRun, parseTimestamp } from "./termination.js";
import { deletionRequestedAt, heldTooLong, isHeld, type LostReason } from "./hold.js";

export interface SweepSummary {
  readonly namespaces: readonly string[];
  /** Pods listed. */
  readonly scanned: number;
  readonly reported: number;
  readonly alreadyReported: number;
  /** Delivery or claim failed: the next sweep tries again. */
  readonly failed: number;
  /** A delivery failed recently and the pod waits for its retry time. */
  readonly deferred: number;
  /** Finished longer ago than OPTUNE_SWEEP_MAX_AGE: left alone. */
  readonly tooOld: number;
  /** Not jobs, or not finished. */
  readonly ignored: number;
  /** Held pods let go with nothing lost (holding is off: OPTUNE_HOLD=0). */
  readonly letGo: number;
  /** Held pods let go without their MEASUREMENT reaching Optune (held longer than OPTUNE_HOLD, or holding off while deleted). */
  readonly lost: number;
  /** With failures: the soonest a retry of a failed one may help (claims conflicting: at once; Optune down: its backoff). */
  readonly retryAfterSeconds?: number;
}

export interface SweepDeps {
  readonly api: PodApi;
  readonly namespaces: Iterable<string>;
  /** The same claim-and-send path events take. */
  readonly report: (pod: Pod) => Promise<Outcome>;
  readonly now: () => number;
  readonly maxAgeMs: number;
  readonly pageSize?: number;
  readonly concurrency?: number;
  /** Aborted when nobody waits for the sweep any more: it stops before its next page or pod. */
  readonly signal?: AbortSignal;
  readonly maxPages?: number;
  /**
   * Pods held by our finalizer: reported whatever their age, let go (counted lost) once held longer
   * than `limitMs` since their deletion; with `limitMs` 0 (holding off) every held pod is let go
   * after its report. `letGo` resolves true when the pod was let go.
   */
  readonly hold?: { readonly limitMs: number; readonly letGo: (pod: Pod, lost?: LostReason) => Promise<boolean> };
}

export const SWEEP_PAGE_SIZE = 100;
/** A list whose continue token expired (410 Gone) starts over, at most this often per namespace. */
export const SWEEP_RESTARTS = 3;
export const SWEEP_CONCURRENCY = 4;
/** Pages per namespace at most (100,000 pods at the default page size): an API that never ends its list cannot hold the sweep. */
export const SWEEP_MAX_PAGES = 1000;

/** The sweep stopped before it was done: its request is gone, or the API server's list does not end. */
export class SweepStopped extends Error {
  override readonly name = "SweepStopped";
}

/** When the job container finished (its creation time if it never started), in ms; undefined if not finished. */
export function finishedAt(pod: Pod): number | undefined {
  const run = finishedRun(pod);
  if (run === undefined) return undefined;
  return parseTimestamp(run.terminated.finishedAt) ?? parseTimestamp(pod.metadata?.creationTimestamp);
}

export async function sweep(deps: SweepDeps): Promise<SweepSummary> {
  const namespaces = [...deps.namespaces];
  const counts = { scanned: 0, reported: 0, alreadyReported: 0, failed: 0, deferred: 0, tooOld: 0, ignored: 0, letGo: 0, lost: 0 };
  const oldest = deps.now() - deps.maxAgeMs;
  let soonest = Infinity;

  const visit = async (pod: Pod) => {
    counts.scanned++;
    const hold = deps.hold !== undefined && isHeld(pod) ? deps.hold : undefined;
    if (hold !== undefined && hold.limitMs > 0 && heldTooLong(pod, deps.now(), hold.limitMs)) {
      if (await hold.letGo(pod, "held-too-long")) counts.lost++;
      return;
    }
    const finished = finishedAt(pod);
    // A held pod waits for its report, however long ago it finished.
    if (hold === undefined && finished !== undefined && finished < oldest) {
      counts.tooOld++;
      return;
    }
    const outcome = await deps.report(pod);
    if (hold !== undefined && hold.limitMs === 0 && outcome.kind !== "sent") {
      // Holding is off: let go; a pod already being deleted goes without its report, if it had none.
      const unreported = deletionRequestedAt(pod) !== undefined && outcome.kind !== "already-reported" && finished !== undefined;
      if (await hold.letGo(pod, unreported ? "hold-off" : undefined)) counts[unreported ? "lost" : "letGo"]++;
    }
    if (outcome.kind === "sent") counts.reported++;
    else if (outcome.kind === "already-reported") counts.alreadyReported++;
    else if (outcome.kind === "failed") {
      counts.failed++;
      soonest = Math.min(soonest, outcome.retryAfterSeconds);
    }
    else if (outcome.kind === "deferred") counts.deferred++;
    else counts.ignored++;
  };

  const maxPages = deps.maxPages ?? SWEEP_MAX_PAGES;
  const stopIfGone = () => {
    if (deps.signal?.aborted === true) throw new SweepStopped("nobody waits for the sweep any more (the ping's request is gone)");
  };
  for (const namespace of namespaces) {
    let next: string | undefined;
    let restarts = 0;
    let pages = 0;
    const tokens = new Set<string>();
    for (;;) {
      stopIfGone();
      if (++pages > maxPages) throw new SweepStopped(`the pod list of namespace ${namespace} did not end within ${maxPages} pages`);
      let page;
      try {
        page = await deps.api.list(namespace, { limit: deps.pageSize ?? SWEEP_PAGE_SIZE, ...(next === undefined ? {} : { continue: next }) });
      } catch (error) {
        // The continue token expired (the list took longer than etcd keeps it): start this namespace over.
        if (!(error instanceof KubernetesError && error.status === 410 && next !== undefined && restarts < SWEEP_RESTARTS)) throw error;
        restarts++;
        next = undefined;
        tokens.clear();
        continue;
      }
      await inParallel(page.items, deps.concurrency ?? SWEEP_CONCURRENCY, async (pod) => {
        stopIfGone();
        await visit(pod);
      });
      next = page.continue;
      if (next === undefined) break;
      // A token seen before would list the same pages again, for ever.
      if (tokens.has(next)) throw new SweepStopped(`the API server repeated a continue token while listing namespace ${namespace}`);
      tokens.add(next);
    }
  }
  return { namespaces, ...counts, ...(soonest === Infinity ? {} : { retryAfterSeconds: soonest }) };
}

/** Runs `work` on every item, at most `limit` at a time. */
async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let index = 0;
  const worker = async () => {
    while (index < items.length) await work(items[index++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
