// The webhook's view of each watched namespace's LimitRanges and ResourceQuotas, kept by a watch
// (an informer: LIST, then WATCH from the list's resourceVersion) instead of two LISTs per
// admission. Pure at the top (a kind's state and the events that change it), the loops below.
//
// How stale an answer may be: a watch the API server keeps open delivers each change within
// moments; one that died without a word is noticed when nothing (no event, no bookmark, no end)
// arrived for WATCH_IDLE_MS, and the API server ends every watch after WATCH_SECONDS anyway. So
// the cache answers only while both kinds are watched and is at most WATCH_IDLE_MS (90 s) behind;
// otherwise (at start, after an error, over the size caps) each admission LISTs as before. Quota
// usage (status.used) is a hint either way: the API server enforces the quota, and a stale hint
// only narrows Optune's ranges more or less; the webhook never blocks a pod.
import type { Logger } from "../edges/log.js";
import type { PolicyKind, PolicyReader, PolicyWatcher } from "../edges/kubernetes.js";
import { printableLine } from "../edges/printable.js";
import { isRecord, text } from "../jobs/pod.js";
import type { NamespacePolicies } from "./namespace-bounds.js";

/** The API server ends each watch after this many seconds; the next starts from the last version seen. */
export const WATCH_SECONDS = 60;
/** A watch that sent nothing for this long is taken as dead: the cache stops answering until it is made again. */
export const WATCH_IDLE_MS = 90_000;

export interface CacheLimits {
  /** Objects kept per namespace and kind; more and the namespace is LISTed per admission. */
  readonly objects: number;
  /** Bytes (of the kept JSON) per namespace and kind. */
  readonly bytes: number;
}
export const CACHE_LIMITS: CacheLimits = { objects: 256, bytes: 1024 * 1024 };

/** What is kept of one object: its name and resourceVersion, spec and status (no managedFields, no annotations). */
interface Kept {
  readonly object: unknown;
  readonly bytes: number;
}

/** One kind in one namespace, as of `resourceVersion`. */
export interface KindState {
  readonly objects: ReadonlyMap<string, Kept>;
  readonly resourceVersion: string;
  readonly bytes: number;
}

export type WatchEvent =
  | { readonly type: "ADDED" | "MODIFIED" | "DELETED"; readonly name: string; readonly object: unknown; readonly resourceVersion: string }
  | { readonly type: "BOOKMARK"; readonly resourceVersion: string }
  | { readonly type: "ERROR"; readonly code: number | undefined; readonly message: string };

/** A state, or why the kind cannot be kept (over a cap, or an ERROR event: LIST again). */
export type Step = { readonly state: KindState } | { readonly relist: string; readonly gone?: boolean };

/** One line of a watch, as the API server sends it; undefined when it is not an event. */
export function decodeWatchEvent(line: string): WatchEvent | undefined {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isRecord(event) || !isRecord(event.object)) return undefined;
  const object = event.object;
  if (event.type === "ERROR") return { type: "ERROR", code: typeof object.code === "number" ? object.code : undefined, message: printableLine(String(object.message ?? "no message"), 200) };
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const resourceVersion = text(metadata.resourceVersion);
  if (resourceVersion === undefined) return undefined;
  if (event.type === "BOOKMARK") return { type: "BOOKMARK", resourceVersion };
  const name = text(metadata.name);
  if (name === undefined || (event.type !== "ADDED" && event.type !== "MODIFIED" && event.type !== "DELETED")) return undefined;
  return { type: event.type, name, object, resourceVersion };
}

function keep(object: unknown): Kept {
  const source = isRecord(object) ? object : {};
  const metadata = isRecord(source.metadata) ? source.metadata : {};
  const kept = { metadata: { name: metadata.name, resourceVersion: metadata.resourceVersion }, spec: source.spec, status: source.status };
  return { object: kept, bytes: JSON.stringify(kept).length };
}

function within(objects: Map<string, Kept>, resourceVersion: string, limits: CacheLimits): Step {
  let bytes = 0;
  for (const kept of objects.values()) bytes += kept.bytes;
  if (objects.size > limits.objects) return { relist: `over ${limits.objects} objects` };
  if (bytes > limits.bytes) return { relist: `over ${limits.bytes} bytes` };
  return { state: { objects, resourceVersion, bytes } };
}

/** The state a LIST gives. */
export function listed(items: readonly unknown[], resourceVersion: string, limits: CacheLimits = CACHE_LIMITS): Step {
  if (items.length > limits.objects) return { relist: `over ${limits.objects} objects` };
  const objects = new Map<string, Kept>();
  for (const item of items) {
    const name = isRecord(item) && isRecord(item.metadata) ? text(item.metadata.name) : undefined;
    if (name !== undefined) objects.set(name, keep(item));
  }
  return within(objects, resourceVersion, limits);
}

/** The state after one event. */
export function applyEvent(state: KindState, event: WatchEvent, limits: CacheLimits = CACHE_LIMITS): Step {
  if (event.type === "ERROR") return { relist: `the watch answered ${event.code ?? "an error"}: ${event.message}`, gone: event.code === 410 };
  if (event.type === "BOOKMARK") return { state: { ...state, resourceVersion: event.resourceVersion } };
  const objects = new Map(state.objects);
  if (event.type === "DELETED") objects.delete(event.name);
  else objects.set(event.name, keep(event.object));
  return within(objects, event.resourceVersion, limits);
}

export interface PolicyCache extends PolicyReader {
  /** Whether `namespace` is answered from the cache (both kinds listed and watched). */
  synced(namespace: string): boolean;
  /** Stops every watch; policies() LISTs from then on. */
  stop(): void;
}

export interface PolicyCacheDeps {
  readonly api: PolicyReader & PolicyWatcher;
  readonly namespaces: Iterable<string>;
  readonly log: Logger;
  readonly limits?: CacheLimits;
  /** The first wait after a failure, doubled up to maxMs (each with up to half again at random). */
  readonly backoff?: { readonly firstMs: number; readonly maxMs: number };
  readonly watchSeconds?: number;
  readonly idleMs?: number;
}

const KINDS: readonly PolicyKind[] = ["limitranges", "resourcequotas"];

/** Starts one LIST+WATCH loop per namespace and kind; `policies` answers from them once synced, else LISTs. */
export function startPolicyCache(deps: PolicyCacheDeps): PolicyCache {
  const stopped = new AbortController();
  const limits = deps.limits ?? CACHE_LIMITS;
  const backoff = deps.backoff ?? { firstMs: 1000, maxMs: 60_000 };
  /** Per namespace: each kind's state while it is watched, and the answer built from them (built once per change). */
  const namespaces = new Map<string, { kinds: Map<PolicyKind, KindState>; answer?: NamespacePolicies }>();
  for (const namespace of deps.namespaces) namespaces.set(namespace, { kinds: new Map() });

  const set = (namespace: string, kind: PolicyKind, state: KindState | undefined) => {
    const entry = namespaces.get(namespace)!;
    if (state === undefined) entry.kinds.delete(kind);
    else entry.kinds.set(kind, state);
    const limitRanges = entry.kinds.get("limitranges");
    const quotas = entry.kinds.get("resourcequotas");
    entry.answer = limitRanges === undefined || quotas === undefined ? undefined : { limitRanges: objectsOf(limitRanges), quotas: objectsOf(quotas) };
  };

  const run = async (namespace: string, kind: PolicyKind): Promise<void> => {
    let delayMs = backoff.firstMs;
    while (!stopped.signal.aborted) {
      let reason: string;
      /** Why the cache broke off a watch itself (what the watch rejects with then is only the connection's end). */
      let broke: Relist | undefined;
      try {
        const list = await deps.api.listPolicy(namespace, kind);
        const first = listed(list.items, list.resourceVersion, limits);
        if ("relist" in first) throw new Relist(first.relist);
        let state = first.state;
        set(namespace, kind, state);
        delayMs = backoff.firstMs;
        // Each watch the API server ends is made again from the last version seen; one that ended
        // at once (a proxy that does not stream?) first waits, so that it is not asked again in a loop.
        while (!stopped.signal.aborted) {
          const started = performance.now();
          await deps.api.watchPolicy(namespace, kind, { resourceVersion: state.resourceVersion, seconds: deps.watchSeconds ?? WATCH_SECONDS, idleMs: deps.idleMs ?? WATCH_IDLE_MS, signal: stopped.signal }, (line) => {
            const event = decodeWatchEvent(line);
            if (event === undefined) return;
            const step = applyEvent(state, event, limits);
            if ("relist" in step) throw (broke = new Relist(step.relist, step.gone));
            state = step.state;
            set(namespace, kind, state);
          });
          if (performance.now() - started < 1000) await sleep(backoff.firstMs, stopped.signal);
        }
        return;
      } catch (thrown) {
        set(namespace, kind, undefined);
        if (stopped.signal.aborted) return;
        const error = broke ?? thrown;
        // 410 Gone: the version is too old, LIST again at once.
        if ((error instanceof Relist && error.gone) || (error as { status?: unknown }).status === 410) continue;
        reason = (error as Error).message;
      }
      deps.log.warn("cannot watch the namespace's policies: each admission lists them until the watch is back", { namespace, kind, error: printableLine(reason, 300), retryInMs: delayMs });
      await sleep(delayMs * (1 + Math.random() / 2), stopped.signal);
      delayMs = Math.min(delayMs * 2, backoff.maxMs);
    }
  };
  for (const namespace of namespaces.keys()) for (const kind of KINDS) void run(namespace, kind);

  return {
    policies: (namespace) => {
      const answer = namespaces.get(namespace)?.answer;
      return answer === undefined ? deps.api.policies(namespace) : Promise.resolve(answer);
    },
    synced: (namespace) => namespaces.get(namespace)?.answer !== undefined,
    stop: () => stopped.abort(),
  };
}

const objectsOf = (state: KindState): unknown[] => [...state.objects.values()].map((kept) => kept.object);

class Relist extends Error {
  constructor(
    message: string,
    readonly gone = false,
  ) {
    super(message);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
