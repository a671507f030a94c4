// Who may report a pod, and the record that it was reported: one report per job.
// memoryLedger holds within one process; annotationLedger holds across replicas and restarts by
// keeping the claim in the pod itself (claim.ts), with the memory record as its fast path.
import { abandonPatch, backoffSeconds, claimPatch, claimProof, claimState, markPatch, releasedValue, releasePatch, sendingValue, sentValue, verdict, type ClaimState } from "./claim.js";
import { KubernetesError, type PodApi } from "../edges/kubernetes.js";
import { finalizersWithHold, finalizersWithoutHold, isHeld, nothingWillFinish } from "./hold.js";
import { createHash } from "node:crypto";
import { podKey, podName, podNamespace, podRef, text, type Pod } from "../jobs/pod.js";

export interface ClaimContext {
  /** The event is a delete: the pod is gone and can no longer be claimed. */
  readonly deleted: boolean;
  /**
   * The sender was authenticated, so a delete may be believed as it is. Otherwise a delete (the one
   * event the API server cannot confirm) is reported only for a pod this function claimed before.
   */
  readonly trusted?: boolean;
}

export interface ReportLedger {
  /** Asks to report this pod now. A granted claim must end in markSent() or release(). */
  claim(pod: Pod, context: ClaimContext): Promise<Claim>;
}

export type Claim =
  | {
      readonly granted: true;
      /** The pod as the API server answered the claim: what the MEASUREMENT is built from (absent in memory mode). */
      readonly pod?: Pod;
      /** The claimed pod turned out not to be reportable: take the claim back, as if never made. */
      abandon(): Promise<void>;
      /** Optune accepted the message: never report this pod again. */
      markSent(): Promise<void>;
      /**
       * Delivery failed: let a later event try again, not before `retryAfterSeconds` (Optune's
       * hint). Resolves with the seconds the pod will actually wait (the backoff grows with failures).
       */
      release(retryAfterSeconds: number): Promise<number>;
    }
  /**
   * Not ours to report now; with retryAfterSeconds: not yet, a delivery failed recently. Without
   * `left` Optune has it; with it, nothing reached Optune from here: another instance is sending
   * it, the pod is gone before anyone claimed it, or its claim annotation is not ours.
   */
  | { readonly granted: false; readonly reason: string; readonly retryAfterSeconds?: number; readonly unconfirmed?: true; readonly left?: Left };

/** Why a claim was not granted although nobody here knows Optune has the pod's MEASUREMENT. */
export type Left = "in-flight" | "gone" | "foreign";

/** What a claim state that stops a claim says of the pod: reported (undefined), or why it is left. */
function leftBy(state: ClaimState["kind"]): Left | undefined {
  return state === "sent" ? undefined : state === "unreadable" ? "foreign" : "in-flight";
}

export const DEFAULT_MEMORY_CAPACITY = 10_000;
const ALREADY_REPORTED: Claim = Object.freeze({ granted: false, reason: "already reported by this instance" });

const UNCONFIRMED_DELETE: Claim = Object.freeze({
  granted: false,
  unconfirmed: true,
  reason: "a delete of a pod this function never saw finish: nothing can confirm it, so it is not reported (set OPTUNE_EVENT_AUDIENCE to trust authenticated deletes)",
});

/** The longest pod key remembered as it is: a Kubernetes uid has 36 characters. */
const MAX_KEY_CHARS = 64;

/**
 * What the records remember a pod by: its key (podKey), or a SHA-256 of it when longer than
 * MAX_KEY_CHARS, so 10,000 records stay a few MiB whatever an event claims its uid is (25 forged
 * 3.5 MiB uids held 266 MiB). Any uid is still accepted: a hand-written pod's, a test cluster's.
 */
export function ledgerKey(pod: Pod): string {
  const key = podKey(pod);
  return key.length <= MAX_KEY_CHARS ? key : `sha256:${createHash("sha256").update(key).digest("base64url")}`;
}

/** Adds `key` to an insertion-ordered set holding at most `capacity` keys (the oldest goes). */
function remember(set: Set<string>, key: string, capacity: number): void {
  set.add(key);
  if (set.size > capacity) set.delete(set.values().next().value as string);
}

/**
 * Remembers the last `capacity` reported pods (by uid) in this process. A pod is marked only
 * after Optune accepted it, so a failed delivery is retried when the event comes again. It also
 * remembers the pods it saw finished: the only ones whose unauthenticated delete it believes.
 */
export function memoryLedger(capacity = DEFAULT_MEMORY_CAPACITY): ReportLedger & { readonly size: () => number; readonly keyChars: () => number } {
  const reported = new Set<string>(); // insertion-ordered: the first entry is the oldest
  const seenFinished = new Set<string>();
  return {
    size: () => reported.size,
    /** The characters of the keys held (what the records cost, bounded by MAX_KEY_CHARS each). */
    keyChars: () => [...reported, ...seenFinished].reduce((sum, key) => sum + key.length, 0),
    async claim(pod, context) {
      const key = ledgerKey(pod);
      if (reported.has(key)) return ALREADY_REPORTED;
      if (context.deleted && context.trusted !== true && !seenFinished.has(key)) return UNCONFIRMED_DELETE;
      if (!context.deleted) remember(seenFinished, key, capacity);
      return {
        granted: true,
        abandon: async () => {},
        release: async (retryAfterSeconds) => retryAfterSeconds,
        async markSent() {
          remember(reported, key, capacity);
        },
      };
    },
  };
}

export interface AnnotationLedgerDeps {
  readonly api: PodApi;
  /** This process's record: checked first (no API call), and the fallback when the API refuses. */
  readonly memory: ReportLedger;
  /** Names this process in the claims it writes. */
  readonly instance: string;
  readonly ttlMs: number;
  readonly now: () => number;
  /** A 403: the claim falls back to the memory record. */
  readonly onRefused: (error: KubernetesError) => void;
  /** Another instance wrote the pod first (409): counted as a claim lost. */
  readonly onLost?: () => void;
  /**
   * Signs the claims (HMAC of the pod's uid), so that a delete event, which carries the claim as
   * the sender says, is believed only with a claim this function's instances wrote. All replicas
   * share it: the Optune token.
   */
  readonly proofKey: string;
  /** OPTUNE_HOLD is on: a claim holds the pod (our finalizer) until the write that marks it sent. */
  readonly hold?: boolean;
}

/** Conflicts in a row before giving up (the event is then retried later). */
const MAX_CLAIM_ATTEMPTS = 4;

/**
 * The writes after the claim need only to be made: the pod they answer (a whole pod, parsed into
 * objects several times its size, all garbage) is not parsed.
 */
const NO_ANSWER = { answer: false } as const;

export function annotationLedger(deps: AnnotationLedgerDeps): ReportLedger {
  const { api } = deps;
  // Pods backing off after a failed delivery, and until when: nobody may claim them before that,
  // so their events are answered without an API call while Optune is down.
  const backoff = new Map<string, number>();
  const backOff = (key: string, until: number): void => {
    backoff.delete(key); // re-inserted last: the map stays ordered by insertion, oldest first
    backoff.set(key, until);
    if (backoff.size > DEFAULT_MEMORY_CAPACITY) backoff.delete(backoff.keys().next().value as string);
  };
  const deferred = (until: number, reason: string): Claim => ({ granted: false, reason, retryAfterSeconds: Math.max(1, Math.ceil((until - deps.now()) / 1000)) });
  const deletedBeforeClaim = { granted: false, reason: "the pod was deleted before it could be claimed; its delete event reports it", left: "gone" } as const;

  return {
    async claim(pod, context) {
      // The memory record is only the fast path here: deletes are judged by the claim in the pod.
      const local = await deps.memory.claim(pod, { ...context, trusted: true });
      if (!local.granted) return local;
      const namespace = podNamespace(pod) ?? "";
      const name = podName(pod) ?? "";
      const key = ledgerKey(pod);
      const until = backoff.get(key);
      if (until !== undefined && !context.deleted) {
        if (until > deps.now()) return deferred(until, `a delivery failed; the next one is due at ${new Date(until).toISOString()}`);
        backoff.delete(key);
      }

      let current: Pod | undefined = pod;
      for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS; attempt++) {
        const state = claimState(current);
        // A deleted pod cannot be claimed: report it when nobody holds a claim and nobody reported it.
        if (context.deleted) {
          if (context.trusted !== true) {
            // The claim arrives in the event, as the sender wrote it: only a signed one is ours.
            const ours = (state.kind === "sending" || state.kind === "released") && state.proof === proof(pod);
            if (!ours && state.kind !== "sent") return UNCONFIRMED_DELETE;
          }
          if (state.kind === "none" || state.kind === "released") return local;
          const left = leftBy(state.kind);
          return { granted: false, reason: `deleted while its claim said ${state.kind}`, ...(left === undefined ? {} : { left }) };
        }
        const decision = verdict(state, { instance: deps.instance, now: deps.now(), ttlMs: deps.ttlMs });
        if (!decision.claim) {
          if (!("retryAt" in decision)) {
            const left = leftBy(state.kind);
            return { granted: false, reason: decision.reason, ...(left === undefined ? {} : { left }) };
          }
          backOff(key, decision.retryAt);
          return deferred(decision.retryAt, decision.reason);
        }

        const resourceVersion = text(current.metadata?.resourceVersion);
        if (resourceVersion === undefined) {
          // A hand-written pod (invoke): claim against the real one.
          current = await api.read(namespace, name);
          if (current === undefined) return { granted: false, reason: `${podRef(pod)} does not exist in the cluster`, left: "gone" };
          continue;
        }
        try {
          // The claim holds the pod too, where the webhook did not: the same write, no extra one.
          const hold = deps.hold === true ? finalizersWithHold(current) : undefined;
          const claimed = await api.patch(namespace, name, claimPatch(resourceVersion, sendingValue(deps.instance, deps.now(), decision.failures, proof(current)), hold));
          return {
            granted: true,
            pod: claimed,
            abandon: async () => {
              await local.abandon();
              // A pod being deleted that will never finish a run is let go in the same write.
              const release = isHeld(claimed) && nothingWillFinish(claimed) ? finalizersWithoutHold(claimed) : undefined;
              await api.patch(namespace, name, abandonPatch(text(claimed.metadata?.resourceVersion) ?? resourceVersion, release), NO_ANSWER).catch((error: Error) => {
                if (!(error instanceof KubernetesError && (error.status === 404 || error.status === 409))) throw error;
              });
            },
            markSent: async () => {
              await local.markSent();
              await mark(namespace, name, proof(claimed), claimed);
            },
            release: async (retryAfterSeconds) => {
              const seconds = await release(namespace, name, text(claimed.metadata?.resourceVersion), proof(claimed), decision.failures + 1, retryAfterSeconds);
              backOff(key, deps.now() + seconds * 1000);
              return seconds;
            },
          };
        } catch (error) {
          if (!(error instanceof KubernetesError)) throw error;
          if (error.status === 409) {
            deps.onLost?.();
            current = await api.read(namespace, name);
            if (current === undefined) return deletedBeforeClaim;
            continue;
          }
          if (error.status === 404) return deletedBeforeClaim;
          if (error.status === 403) {
            deps.onRefused(error);
            return local;
          }
          throw error;
        }
      }
      throw new Error(`${podRef(pod)} changed ${MAX_CLAIM_ATTEMPTS} times while we claimed it`);
    },
  };

  function proof(pod: Pod): string {
    return claimProof(deps.proofKey, podKey(pod));
  }

  /**
   * Marks the claim sent and, in the same write, lets the held pod go. That write replaces the
   * finalizer list, so it is conditional: after a conflict, read the pod and write again. After
   * too many, "sent" is written alone, and the sweep lets the pod go.
   */
  async function mark(namespace: string, name: string, signed: string, claimed: Pod): Promise<void> {
    let pod: Pod | undefined = claimed;
    for (let attempt = 1; ; attempt++) {
      const resourceVersion = text(pod.metadata?.resourceVersion);
      const release = isHeld(pod) && resourceVersion !== undefined && attempt <= MAX_CLAIM_ATTEMPTS ? { resourceVersion, finalizers: finalizersWithoutHold(pod) } : undefined;
      try {
        await api.patch(namespace, name, markPatch(sentValue(deps.instance, deps.now(), signed), release), NO_ANSWER);
        return;
      } catch (error) {
        if (error instanceof KubernetesError && error.status === 404) return; // gone: nothing left to mark
        if (!(release !== undefined && error instanceof KubernetesError && error.status === 409)) throw error;
        pod = await api.read(namespace, name);
        if (pod === undefined) return;
      }
    }
  }

  /**
   * Replaces our claim, if it is still ours, by a released one that says when to try again: the
   * events this write causes then wait for that time instead of claiming again at once.
   */
  async function release(namespace: string, name: string, resourceVersion: string | undefined, signed: string, failures: number, hintSeconds: number): Promise<number> {
    const seconds = backoffSeconds(hintSeconds, failures);
    const now = deps.now();
    const value = releasedValue(deps.instance, now, failures, now + seconds * 1000, signed);
    let version = resourceVersion;
    for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS && version !== undefined; attempt++) {
      try {
        await api.patch(namespace, name, releasePatch(version, value), NO_ANSWER);
        break;
      } catch (error) {
        if (!(error instanceof KubernetesError) || error.status !== 409) throw error;
        const pod = await api.read(namespace, name);
        const state = pod === undefined ? undefined : claimState(pod);
        if (state?.kind !== "sending" || state.instance !== deps.instance) break;
        version = text(pod?.metadata?.resourceVersion);
      }
    }
    return seconds;
  }
}
