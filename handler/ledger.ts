// Who may report a pod, and the record that it was reported: one report per job.
// This version keeps the record in memory, so it holds within one instance only.
import { podKey, type Pod } from "./pod.js";

export interface ReportLedger {
  /** Asks to report this pod now. A granted claim must end in markSent() or release(). */
  claim(pod: Pod): Promise<Claim>;
}

export type Claim =
  | {
      readonly granted: true;
      /** Optune accepted the message: never report this pod again. */
      markSent(): Promise<void>;
      /** Delivery failed: let a later event try again. */
      release(): Promise<void>;
    }
  | { readonly granted: false; readonly reason: string };

export const DEFAULT_MEMORY_CAPACITY = 10_000;

/**
 * Remembers the last `capacity` reported pods (by uid) in this process. A pod is marked only
 * after Optune accepted it, so a failed delivery is retried when the event comes again.
 */
export function memoryLedger(capacity = DEFAULT_MEMORY_CAPACITY): ReportLedger & { readonly size: () => number } {
  const reported = new Set<string>(); // insertion-ordered: the first entry is the oldest
  const noop = async () => {};
  return {
    size: () => reported.size,
    async claim(pod) {
      const key = podKey(pod);
      if (reported.has(key)) return { granted: false, reason: "already reported by this instance" };
      return {
        granted: true,
        release: noop,
        async markSent() {
          reported.add(key);
          if (reported.size > capacity) reported.delete(reported.values().next().value as string);
        },
      };
    },
  };
}
