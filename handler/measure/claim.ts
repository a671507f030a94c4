// Claims kept in the pod itself: the annotation optune.ai/measurement records who is reporting
// the job, whether Optune has it, and, after a failed delivery, when to try again. Written with a
// merge patch that carries the pod's resourceVersion, so of two writers only one wins (the other
// gets 409 Conflict). Pure: what the annotation says, whether we may claim, and the patches.
//
// Every write to the pod comes back to the function as an update event. So no state may make a
// function write again at once on seeing it: a fresh `sending` is left to its writer (even by the
// same instance), and a `released` claim is left alone until its retryAt.
import { createHmac } from "node:crypto";
import { podAnnotation, type Pod } from "../jobs/pod.js";
import { parseTimestamp } from "./termination.js";

export const CLAIM_ANNOTATION = "optune.ai/measurement";
/** Backoff after failed deliveries doubles up to this; the sweep runs about as often. */
export const MAX_BACKOFF_SECONDS = 300;

export type ClaimState =
  | { readonly kind: "none" }
  | { readonly kind: "sending"; readonly instance: string; readonly since: number; readonly failures: number; readonly proof?: string }
  | { readonly kind: "sent" }
  /** Nobody holds it: the last delivery failed; try again from retryAt. */
  | { readonly kind: "released"; readonly failures: number; readonly retryAt: number; readonly proof?: string }
  /** A value we did not write: never overwritten, the pod is left alone. */
  | { readonly kind: "unreadable"; readonly value: string };

export function claimState(pod: Pod): ClaimState {
  const value = podAnnotation(pod, CLAIM_ANNOTATION);
  if (value === undefined) return { kind: "none" };
  let parsed: { state?: unknown; instance?: unknown; at?: unknown; failures?: unknown; retryAt?: unknown; proof?: unknown };
  try {
    parsed = JSON.parse(value) as typeof parsed;
  } catch {
    return { kind: "unreadable", value };
  }
  const failures = parsed?.failures === undefined ? 0 : parsed.failures;
  if (typeof failures !== "number" || !Number.isInteger(failures) || failures < 0) return { kind: "unreadable", value };
  const since = parseTimestamp(parsed?.at);
  const proof = typeof parsed?.proof === "string" ? { proof: parsed.proof } : {};
  switch (parsed?.state) {
    case "sent":
      return { kind: "sent" };
    case "sending":
      if (typeof parsed.instance === "string" && since !== undefined) return { kind: "sending", instance: parsed.instance, since, failures, ...proof };
      break;
    case "released": {
      const retryAt = parseTimestamp(parsed.retryAt);
      if (retryAt !== undefined && failures > 0) return { kind: "released", failures, retryAt, ...proof };
      break;
    }
  }
  return { kind: "unreadable", value };
}

export interface Claimant {
  readonly instance: string;
  readonly now: number;
  readonly ttlMs: number;
}

export type Verdict =
  /** Claim it; `failures` deliveries failed before (carried into the claim, for the next backoff). */
  | { readonly claim: true; readonly failures: number }
  /** Not ours to report: answer that it is done. */
  | { readonly claim: false; readonly reason: string }
  /** Not yet: a delivery failed recently; nobody may claim before retryAt. */
  | { readonly claim: false; readonly reason: string; readonly retryAt: number; readonly retryAfterSeconds: number };

/** May `claimant` claim a pod whose annotation says `state`? */
export function verdict(state: ClaimState, claimant: Claimant): Verdict {
  switch (state.kind) {
    case "none":
      return { claim: true, failures: 0 };
    case "sent":
      return { claim: false, reason: "already reported (the pod's claim says sent)" };
    case "unreadable":
      return { claim: false, reason: `the pod's ${CLAIM_ANNOTATION} annotation was not written by us: ${JSON.stringify(state.value)}` };
    case "sending":
      // A claim older than the TTL was left by an instance that died before marking it: take it over.
      if (claimant.now - state.since >= claimant.ttlMs) return { claim: true, failures: state.failures };
      return { claim: false, reason: `being reported by ${state.instance} since ${new Date(state.since).toISOString()}` };
    case "released":
      if (claimant.now >= state.retryAt) return { claim: true, failures: state.failures };
      return {
        claim: false,
        reason: `${state.failures} deliveries failed; the next one is due at ${new Date(state.retryAt).toISOString()}`,
        retryAt: state.retryAt,
        retryAfterSeconds: Math.max(1, Math.ceil((state.retryAt - claimant.now) / 1000)),
      };
  }
}

/** Seconds to wait after the n-th failed delivery: Optune's hint, doubled each time, capped. */
export function backoffSeconds(hintSeconds: number, failures: number): number {
  return Math.min(MAX_BACKOFF_SECONDS, Math.max(1, hintSeconds) * 2 ** Math.max(0, failures - 1));
}

const iso = (ms: number) => new Date(ms).toISOString();

/** That a claim on the pod with this uid was written by an instance holding `key`: 128 bits of HMAC-SHA256. */
export function claimProof(key: string, uid: string): string {
  return createHmac("sha256", key).update(`${CLAIM_ANNOTATION}\n${uid}`).digest("base64url").slice(0, 22);
}

const signed = (proof: string | undefined) => (proof === undefined ? {} : { proof });

export function sendingValue(instance: string, now: number, failures = 0, proof?: string): string {
  return JSON.stringify({ state: "sending", instance, at: iso(now), ...(failures > 0 ? { failures } : {}), ...signed(proof) });
}

export function sentValue(instance: string, now: number, proof?: string): string {
  return JSON.stringify({ state: "sent", instance, at: iso(now), ...signed(proof) });
}

export function releasedValue(instance: string, now: number, failures: number, retryAt: number, proof?: string): string {
  return JSON.stringify({ state: "released", instance, at: iso(now), failures, retryAt: iso(retryAt), ...signed(proof) });
}

/**
 * Conditional on resourceVersion: applied only if nobody wrote the pod since we read it. With
 * `finalizers` (the pod's list with our hold added, hold.ts) the same write holds the pod.
 */
export function claimPatch(resourceVersion: string, value: string, finalizers?: readonly unknown[]): object {
  return { metadata: { resourceVersion, annotations: { [CLAIM_ANNOTATION]: value }, ...(finalizers === undefined ? {} : { finalizers }) } };
}

/**
 * Once Optune has the message, "sent" is the truth whatever else changed: unconditional, unless
 * the same write lets the held pod go (`release`: the finalizer list without ours, read at
 * `resourceVersion`; a merge patch replaces the whole list, so that one is conditional).
 */
export function markPatch(value: string, release?: { readonly resourceVersion: string; readonly finalizers: readonly unknown[] | null }): object {
  return { metadata: { annotations: { [CLAIM_ANNOTATION]: value }, ...(release === undefined ? {} : release) } };
}

/** Conditional too: replaces our claim only if it is still the one we wrote. */
export const releasePatch = claimPatch;

/** Removes our claim (merge patch: null deletes a key), only if nobody wrote the pod since; with `finalizers`, lets the held pod go too. */
export function abandonPatch(resourceVersion: string, finalizers?: readonly unknown[] | null): object {
  return { metadata: { resourceVersion, annotations: { [CLAIM_ANNOTATION]: null }, ...(finalizers === undefined ? {} : { finalizers }) } };
}
