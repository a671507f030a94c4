// The function: one event in, at most one Optune MEASUREMENT per job out, and an outcome that
// says what happened. Callable without a server (the CLI does); the HTTP edge lives in server.ts.
import { assessPod, type Assessment, type IgnoreCode } from "./assess.js";
import type { JobCriteria } from "../jobs/job.js";
import { KubernetesError, type PodApi } from "../edges/kubernetes.js";
import type { Left, ReportLedger } from "./ledger.js";
import type { Logger } from "../edges/log.js";
import { noMetrics, type Metrics } from "../edges/metrics.js";
import type { Deliver } from "../edges/optune.js";
import { clip, podKey, podName, podNamespace, podRef, podUid, type Pod } from "../jobs/pod.js";
import type { PodEvent } from "./pod-event.js";
import { settingsDisagreement } from "../jobs/settings-annotation.js";
import { withUsage } from "./measurement.js";
import type { ResourceUsage } from "./resources.js";
import { sweep, type SweepSummary } from "./sweep.js";
import { claimState } from "./claim.js";
import { deletionRequestedAt, isHeld, nothingWillFinish, unholdPatch, type LostReason } from "./hold.js";

export type Outcome =
  | {
      readonly kind: "sent";
      readonly pod: string;
      readonly appId: string;
      readonly runSeconds?: number;
      readonly exitCode?: number;
      /** Printed, not sent (dry run). */
      readonly dryRun?: true;
    }
  | { readonly kind: "already-reported"; readonly pod: string; readonly appId: string; readonly reason: string }
  | { readonly kind: "ignored"; readonly code: OutcomeCode; readonly reason: string; readonly pod?: string; readonly odd?: true }
  /** A delivery failed recently and the pod is backing off: the event source should send the event again later. */
  | { readonly kind: "deferred"; readonly pod: string; readonly appId: string; readonly reason: string; readonly retryAfterSeconds: number }
  /** Delivery (or the claim, or the Kubernetes read) failed: the event source should send the event again later. */
  | { readonly kind: "failed"; readonly pod: string; readonly appId?: string; readonly error: string; readonly retryAfterSeconds: number }
  /** The message can never be sent as it is (no retry can help): answered 422, so a Broker dead-letters it. */
  | { readonly kind: "undeliverable"; readonly pod: string; readonly appId: string; readonly error: string }
  | ({ readonly kind: "swept" } & SweepSummary)
  /** An item of a batch that is not a CloudEvent we can read (the HTTP edge decides this, not the handler). */
  | { readonly kind: "malformed"; readonly error: string };

/** Why an event was ignored: the pod stages' codes, and the handler's own. */
export type OutcomeCode = IgnoreCode | "other-event" | "pod-gone" | "no-kubernetes" | "no-sweep" | "unconfirmed-delete" | "not-confirmed" | "claimed-elsewhere" | "foreign-claim";

/** A claim not granted with nothing sent from here: why, as the code the summary counts. */
const LEFT_CODES: Readonly<Record<Left, OutcomeCode>> = { "in-flight": "claimed-elsewhere", gone: "pod-gone", foreign: "foreign-claim" };

export interface HandlerDeps {
  readonly criteria: JobCriteria;
  readonly ledger: ReportLedger;
  readonly deliver: Deliver;
  readonly log: Logger;
  /** The Kubernetes API, when there is one: Reference mode and the sweep read pods through it. */
  readonly pods?: PodApi;
  /** The sweep's settings, or why it cannot run with this configuration. */
  readonly sweep: SweepSettings;
  /** A 403 from the API: counted and logged by the caller. */
  readonly onRefused?: (error: KubernetesError) => void;
  /** Bound on pods being claimed and sent at once (OPTUNE_MAX_INFLIGHT); beyond it, events are deferred at once. */
  readonly maxInFlight?: number;
  readonly metrics?: Metrics;
  readonly now?: () => number;
  /** The events' sender is authenticated (OPTUNE_EVENT_AUDIENCE): a delete is believed as it is. */
  readonly trustDeletes?: boolean;
  /** With PROMETHEUS_URL: the run's CPU seconds and peak memory, read after the claim, bounded in time, never failing. */
  readonly resourceUsage?: (pod: Pod, deleted: boolean) => Promise<ResourceUsage | undefined>;
  /**
   * Pods held by our finalizer until reported (claims in the pods): a held pod being deleted is let
   * go once its claim says sent or nothing will finish in it, and by the sweep after `limitMs`
   * (OPTUNE_HOLD); with `limitMs` 0 the sweep lets every held pod go.
   */
  readonly hold?: { readonly api: PodApi; readonly limitMs: number };
}

export type SweepSettings = { readonly pods: PodApi; readonly maxAgeMs: number } | { readonly unavailable: string };

export interface Handler {
  /** `signal`: the sender went away; work only it was waiting for (a sweep) may stop. */
  (event: PodEvent, signal?: AbortSignal): Promise<Outcome>;
  /** The claim-and-send path for one pod, as events and the sweep use it. */
  readonly report: (pod: Pod, deleted?: boolean) => Promise<Outcome>;
}

/** Seconds the event source should wait before sending a failed event again, when Optune gave no hint. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;
export const DEFAULT_MAX_IN_FLIGHT = 64;
/** How long a pod waits after a delivery that cannot succeed: the sweep may try again with a fixed deployment. */
const UNDELIVERABLE_RETRY_SECONDS = 300;

export function createHandler(deps: HandlerDeps): Handler {
  const now = deps.now ?? Date.now;
  // Events for the same pod handled at the same time share one claim-and-send.
  const inFlight = new Map<string, Promise<Outcome>>();
  const maxInFlight = deps.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const metrics = deps.metrics ?? noMetrics;

  async function report(pod: Pod, deleted = false): Promise<Outcome> {
    const assessment = assessPod(pod, deps.criteria, deleted);
    // A held pod being deleted that has nothing (more) to wait for: let it go.
    if (deps.hold !== undefined && isHeld(pod) && deletionRequestedAt(pod) !== undefined) {
      if (claimState(pod).kind === "sent" || (assessment.kind === "ignore" && nothingWillFinish(pod))) await letGo(deps.hold.api, pod);
    }
    if (assessment.kind === "ignore") {
      return { kind: "ignored", code: assessment.code, reason: assessment.reason, pod: podRef(pod), ...(assessment.odd ? { odd: true } : {}) };
    }
    const key = podKey(pod);
    const running = inFlight.get(key);
    if (running !== undefined) {
      const first = await running;
      return first.kind === "sent" ? { kind: "already-reported", pod: first.pod, appId: first.appId, reason: "reported by a concurrent event" } : first;
    }
    // Above the bound, answer at once rather than queue without limit: the source sends the event again.
    if (inFlight.size >= maxInFlight) {
      return { kind: "deferred", pod: podRef(pod), appId: assessment.appId, reason: `${maxInFlight} deliveries to Optune are in flight (OPTUNE_MAX_INFLIGHT)`, retryAfterSeconds: 1 };
    }
    const sending = claimAndSend(pod, assessment, deleted).finally(() => inFlight.delete(key));
    inFlight.set(key, sending);
    return sending;
  }

  async function claimAndSend(pod: Pod, assessment: Extract<Assessment, { kind: "report" }>, deleted: boolean): Promise<Outcome> {
    const ref = podRef(pod);
    const { appId } = assessment;
    let claim;
    try {
      claim = await deps.ledger.claim(pod, { deleted, trusted: deps.trustDeletes === true });
    } catch (error) {
      return failed(ref, `cannot claim the pod: ${(error as Error).message}`, appId, retryHint(error));
    }
    if (!claim.granted && claim.unconfirmed === true) {
      metrics.claim("unconfirmed-delete");
      return { kind: "ignored", code: "unconfirmed-delete", reason: claim.reason, pod: ref, odd: true };
    }
    metrics.claim(claim.granted ? "won" : claim.retryAfterSeconds !== undefined ? "backing-off" : claim.left === undefined ? "already-reported" : "left");
    if (!claim.granted) {
      if (claim.retryAfterSeconds !== undefined) return { kind: "deferred", pod: ref, appId, reason: claim.reason, retryAfterSeconds: claim.retryAfterSeconds };
      // "already reported" only when Optune has it; otherwise the code says who or what holds it.
      return claim.left === undefined ? { kind: "already-reported", pod: ref, appId, reason: claim.reason } : { kind: "ignored", code: LEFT_CODES[claim.left], reason: claim.reason, pod: ref };
    }

    // What is sent is the pod as the API server answered the claim, not what the event said of it.
    let confirmed = assessment;
    if (claim.pod !== undefined) {
      const truth = assessPod(claim.pod, deps.criteria, deleted);
      if (truth.kind !== "report" || truth.appId !== appId) {
        await claim.abandon().catch((error: Error) => deps.log.warn("cannot take back the claim", { pod: ref, error: error.message }));
        const why = truth.kind === "report" ? `its app id is ${clip(truth.appId, 64)}` : truth.reason;
        return { kind: "ignored", code: "not-confirmed", reason: `the event said the job finished, but the API server's pod disagrees: ${why}`, pod: ref, odd: true };
      }
      confirmed = truth;
    }
    const disagreement = settingsDisagreement(claim.pod ?? pod);
    if (disagreement !== undefined) deps.log.warn("the pod's optune.ai/settings annotation is not what it runs with: not reported", { pod: ref, why: disagreement });
    const uid = podUid(pod);
    const usage = deps.resourceUsage === undefined ? undefined : await deps.resourceUsage(claim.pod ?? pod, deleted);
    const result = await deps.deliver({ appId, body: withUsage(confirmed.message(), usage), ...(uid === undefined ? {} : { idempotencyKey: uid }) });
    if (!result.ok) {
      const hint = result.permanent ? UNDELIVERABLE_RETRY_SECONDS : (result.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS);
      const retryAfter = await claim.release(hint).catch((error: Error) => {
        deps.log.warn("cannot release the claim", { pod: ref, error: error.message });
        return hint;
      });
      return result.permanent ? { kind: "undeliverable", pod: ref, appId, error: result.error } : failed(ref, result.error, appId, retryAfter);
    }
    await claim.markSent().catch((error: Error) => deps.log.error("sent, but cannot record it", { pod: ref, error: error.message }));
    metrics.job(confirmed.runSeconds, confirmed.exitCode, confirmed.disrupted);
    return {
      kind: "sent",
      pod: ref,
      appId,
      ...(confirmed.runSeconds === undefined ? {} : { runSeconds: confirmed.runSeconds }),
      ...(confirmed.exitCode === undefined ? {} : { exitCode: confirmed.exitCode }),
      ...(result.dryRun === true ? { dryRun: true } : {}),
    };
  }

  /** Reference mode: the event names the pod; read it, then go on as in Resource mode. */
  async function reportReferenced(namespace: string, name: string): Promise<Outcome> {
    const ref = `${clip(namespace)}/${clip(name)}`;
    if (!deps.criteria.namespaces.has(namespace)) return { kind: "ignored", code: "not-watched", reason: `namespace ${clip(namespace)} is not watched`, pod: ref };
    if (deps.pods === undefined) {
      return { kind: "ignored", code: "no-kubernetes", reason: "reference mode needs the Kubernetes API, and no Kubernetes configuration was found; set mode: Resource on the ApiServerSource", pod: ref, odd: true };
    }
    let pod;
    try {
      pod = await deps.pods.read(namespace, name);
    } catch (error) {
      if (error instanceof KubernetesError && error.status === 403) deps.onRefused?.(error);
      return failed(ref, (error as Error).message, undefined, retryHint(error));
    }
    if (pod === undefined) return { kind: "ignored", code: "pod-gone", reason: "the pod no longer exists", pod: ref };
    return report(pod);
  }

  /**
   * Removes our finalizer, if nobody wrote the pod since it was read (a conflict or a pod gone is
   * left to the next event or sweep). With `lost`: it goes without its MEASUREMENT reaching
   * Optune: counted and logged (once: the pod is gone after this write).
   */
  async function letGo(api: PodApi, pod: Pod, lost?: LostReason): Promise<boolean> {
    try {
      await api.patch(podNamespace(pod) ?? "", podName(pod) ?? "", unholdPatch(pod));
    } catch (error) {
      if (error instanceof KubernetesError && (error.status === 404 || error.status === 409)) return false;
      if (error instanceof KubernetesError && error.status === 403) deps.onRefused?.(error);
      else deps.log.warn("cannot let go of a held pod", { pod: podRef(pod), error: (error as Error).message });
      return false;
    }
    if (lost !== undefined) {
      metrics.lost(lost);
      deps.log.warn(lost === "held-too-long" ? "held longer than OPTUNE_HOLD: let go without its MEASUREMENT" : "holding is off (OPTUNE_HOLD=0): let go without its MEASUREMENT", { pod: podRef(pod), reason: lost });
    }
    return true;
  }

  // One sweep at a time: pings that come while one runs share its result. It stops early only
  // when every ping waiting for it has gone.
  let running: { readonly result: Promise<Outcome>; waiting: number; readonly stop: AbortController } | undefined;
  async function sweepShared(signal: AbortSignal | undefined): Promise<Outcome> {
    if ("unavailable" in deps.sweep) return { kind: "ignored", code: "no-sweep", reason: deps.sweep.unavailable, odd: true };
    let current = running;
    if (current === undefined) {
      const stop = new AbortController();
      const result = sweepNow(deps.sweep, stop.signal).finally(() => {
        if (running === current) running = undefined;
      });
      running = current = { result, waiting: 0, stop };
    }
    const shared = current;
    shared.waiting++;
    const leave = () => {
      if (--shared.waiting > 0) return;
      shared.stop.abort();
      if (running === shared) running = undefined; // a ping that comes now starts a new sweep
    };
    signal?.addEventListener("abort", leave, { once: true });
    try {
      return await shared.result;
    } finally {
      signal?.removeEventListener("abort", leave);
    }
  }

  async function sweepNow(settings: Exclude<SweepSettings, { unavailable: string }>, signal: AbortSignal): Promise<Outcome> {
    try {
      const hold = deps.hold;
      const summary = await sweep({
        api: settings.pods,
        namespaces: deps.criteria.namespaces,
        report,
        now,
        maxAgeMs: settings.maxAgeMs,
        signal,
        ...(hold === undefined ? {} : { hold: { limitMs: hold.limitMs, letGo: (pod, lost) => letGo(hold.api, pod, lost) } }),
      });
      metrics.sweep({ reported: summary.reported, already_reported: summary.alreadyReported, failed: summary.failed, deferred: summary.deferred, too_old: summary.tooOld, ignored: summary.ignored, let_go: summary.letGo, lost: summary.lost });
      return { kind: "swept", ...summary };
    } catch (error) {
      if (error instanceof KubernetesError && error.status === 403) deps.onRefused?.(error);
      metrics.sweep(undefined);
      return failed("(sweep)", `the sweep stopped: ${(error as Error).message}`, undefined, retryHint(error));
    }
  }

  const handle = async (event: PodEvent, signal?: AbortSignal): Promise<Outcome> => {
    switch (event.kind) {
      case "resource":
        return report(event.pod, event.action === "delete");
      case "reference":
        return reportReferenced(event.namespace, event.name);
      case "sweep":
        return sweepShared(signal);
      case "other":
        return { kind: "ignored", code: "other-event", reason: `event type ${clip(event.type)} is not handled` };
    }
  };
  return Object.assign(handle, { report });
}

function failed(pod: string, error: string, appId?: string, retryAfterSeconds = DEFAULT_RETRY_AFTER_SECONDS): Outcome {
  return { kind: "failed", pod, ...(appId === undefined ? {} : { appId }), error, retryAfterSeconds };
}

/**
 * When to try again after the Kubernetes API failed: its Retry-After (429), else at once (1 s): no
 * claim was written, so a retry by the event source (a direct sink retries within ~3 s) can help.
 */
function retryHint(error: unknown): number {
  return error instanceof KubernetesError && error.retryAfterSeconds !== undefined ? error.retryAfterSeconds : KUBERNETES_RETRY_AFTER_SECONDS;
}

const KUBERNETES_RETRY_AFTER_SECONDS = 1;

/** When the event source should send the event again (it answers 503), or undefined when it is done. */
export function retryAfterSeconds(outcome: Outcome): number | undefined {
  if (outcome.kind === "failed" || outcome.kind === "deferred") return outcome.retryAfterSeconds;
  if (outcome.kind === "swept" && outcome.failed > 0) return outcome.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
  return undefined;
}
