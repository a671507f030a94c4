// Holding a job pod until Optune has its MEASUREMENT: a finalizer of ours keeps a deleted pod (with
// its claim annotation, the record) in the API server until the write that marks the claim `sent`
// removes it. Kubernetes does the same for its own bookkeeping (the Job controller's
// batch.kubernetes.io/job-tracking finalizer). Pure: what the pod says, and the patches.
//
// Who adds it: the webhook, in its admission patch (no extra write); without the webhook, the
// claim write adds it (the same write), so a pod whose delivery failed is held from then on.
import { text, type Pod } from "../jobs/pod.js";
import { parseTimestamp } from "./termination.js";

export const HOLD_FINALIZER = "optune.ai/measurement";

/** The pod's finalizers, as strings (anything else in the list is kept as it is by the patches below). */
function finalizers(pod: Pod): readonly unknown[] {
  const list = pod.metadata?.finalizers;
  return Array.isArray(list) ? list : [];
}

export function isHeld(pod: Pod): boolean {
  return finalizers(pod).includes(HOLD_FINALIZER);
}

/** When deletion was asked (ms), or undefined while the pod is not being deleted. */
export function deletionRequestedAt(pod: Pod): number | undefined {
  return parseTimestamp(pod.metadata?.deletionTimestamp);
}

/**
 * The finalizer list with ours added, or undefined when there is nothing to add: it is there, or
 * the pod is being deleted (the API server refuses new finalizers then).
 */
export function finalizersWithHold(pod: Pod): readonly unknown[] | undefined {
  if (isHeld(pod) || deletionRequestedAt(pod) !== undefined) return undefined;
  return [...finalizers(pod), HOLD_FINALIZER];
}

/** The finalizer list without ours (null deletes the field in a merge patch). */
export function finalizersWithoutHold(pod: Pod): readonly unknown[] | null {
  const rest = finalizers(pod).filter((name) => name !== HOLD_FINALIZER);
  return rest.length === 0 ? null : rest;
}

/**
 * Lets the pod go, if nobody wrote it since we read it: a merge patch replaces the whole list, so
 * it carries the resourceVersion the list was read at.
 */
export function unholdPatch(pod: Pod): object {
  return { metadata: { resourceVersion: text(pod.metadata?.resourceVersion), finalizers: finalizersWithoutHold(pod) } };
}

/** Why a held pod was let go without its MEASUREMENT reaching Optune (the lost counter's label). */
export type LostReason = "held-too-long" | "hold-off" | "released-by-operator";

/**
 * Held for longer than the bound since its deletion was asked (OPTUNE_HOLD): let go, counted lost.
 * A pod not being deleted is not waiting on us, whatever its age.
 */
export function heldTooLong(pod: Pod, now: number, holdMs: number): boolean {
  const since = deletionRequestedAt(pod);
  return since !== undefined && now - since >= holdMs;
}

/**
 * A held pod being deleted that will never have a run to report: it never reached a node, or it
 * ended (phase Succeeded or Failed) without a finished job container. Its status will not change
 * any more, so holding it would only delay the deletion until the bound.
 */
export function nothingWillFinish(pod: Pod): boolean {
  if (deletionRequestedAt(pod) === undefined) return false;
  const nodeName = text(pod.spec?.nodeName);
  const phase = text(pod.status?.phase);
  return nodeName === undefined || nodeName === "" || phase === "Succeeded" || phase === "Failed";
}
