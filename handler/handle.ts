// The function: one Pod event in, at most one Optune MEASUREMENT out, and an outcome that says
// what happened. Callable without a server (the CLI does); the HTTP edge lives in server.ts.
import { assessPod } from "./assess.js";
import type { JobCriteria } from "./job.js";
import type { ReportLedger } from "./ledger.js";
import type { Logger } from "./log.js";
import type { Deliver } from "./optune.js";
import { podKey, podRef, type Pod } from "./pod.js";
import type { PodEvent } from "./pod-event.js";

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
  | { readonly kind: "ignored"; readonly reason: string; readonly pod?: string; readonly odd?: boolean }
  /** Delivery failed: the event source should send the event again later. */
  | { readonly kind: "failed"; readonly pod: string; readonly appId: string; readonly error: string; readonly retryAfterSeconds: number };

export interface HandlerDeps {
  readonly criteria: JobCriteria;
  readonly ledger: ReportLedger;
  readonly deliver: Deliver;
  readonly log: Logger;
}

export type Handle = (event: PodEvent) => Promise<Outcome>;

/** Seconds the event source should wait before sending a failed event again, when Optune gave no hint. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;

export function createHandler(deps: HandlerDeps): Handle {
  // Events for the same pod handled at the same time share one claim-and-send.
  const inFlight = new Map<string, Promise<Outcome>>();

  async function report(pod: Pod): Promise<Outcome> {
    const assessment = assessPod(pod, deps.criteria);
    if (assessment.kind === "ignore") {
      return { kind: "ignored", reason: assessment.reason, pod: podRef(pod), ...(assessment.odd ? { odd: true } : {}) };
    }
    const key = podKey(pod);
    const running = inFlight.get(key);
    if (running !== undefined) {
      const first = await running;
      return first.kind === "sent" ? { kind: "already-reported", pod: first.pod, appId: first.appId, reason: "reported by a concurrent event" } : first;
    }
    const sending = claimAndSend(pod, assessment).finally(() => inFlight.delete(key));
    inFlight.set(key, sending);
    return sending;
  }

  async function claimAndSend(pod: Pod, assessment: Extract<ReturnType<typeof assessPod>, { kind: "report" }>): Promise<Outcome> {
    const ref = podRef(pod);
    const { appId } = assessment;
    let claim;
    try {
      claim = await deps.ledger.claim(pod);
    } catch (error) {
      return failed(ref, appId, `cannot claim the pod: ${(error as Error).message}`);
    }
    if (!claim.granted) return { kind: "already-reported", pod: ref, appId, reason: claim.reason };

    const uid = pod.metadata?.uid;
    const result = await deps.deliver({ appId, body: assessment.message, ...(uid === undefined ? {} : { idempotencyKey: uid }) });
    if (!result.ok) {
      await claim.release().catch((error: Error) => deps.log.warn("cannot release the claim", { pod: ref, error: error.message }));
      return failed(ref, appId, result.error, result.retryAfterSeconds);
    }
    await claim.markSent().catch((error: Error) => deps.log.error("sent, but cannot record it", { pod: ref, error: error.message }));
    return {
      kind: "sent",
      pod: ref,
      appId,
      ...(assessment.runSeconds === undefined ? {} : { runSeconds: assessment.runSeconds }),
      ...(assessment.exitCode === undefined ? {} : { exitCode: assessment.exitCode }),
      ...(result.dryRun === true ? { dryRun: true } : {}),
    };
  }

  return async (event) => {
    switch (event.kind) {
      case "resource":
        return report(event.pod);
      case "reference":
        // A misconfigured source (Reference is the ApiServerSource default): worth a warning.
        return { kind: "ignored", reason: "reference mode needs the Kubernetes API; set mode: Resource on the ApiServerSource", pod: `${event.namespace}/${event.name}`, odd: true };
      case "other":
        return { kind: "ignored", reason: `event type ${event.type} is not handled` };
    }
  };
}

function failed(pod: string, appId: string, error: string, retryAfterSeconds = DEFAULT_RETRY_AFTER_SECONDS): Outcome {
  return { kind: "failed", pod, appId, error, retryAfterSeconds };
}

/** One log line per handled event: info for anything about a job, debug for events that are not. */
export function logOutcome(log: Logger, outcome: Outcome, fields: Readonly<Record<string, unknown>>): void {
  const line = { ...fields, ...outcome, outcome: outcome.kind, kind: undefined };
  if (outcome.kind === "failed") log.error("event handled", line);
  else if (outcome.kind !== "ignored") log.info("event handled", line);
  else if (outcome.odd === true) log.warn("event handled", line);
  else log.debug("event handled", line);
}
