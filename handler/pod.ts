// The parts of a Pod we read, as the API server serialises them (JSON, timestamps as RFC 3339
// strings). Everything is optional because events are untrusted input: each stage checks the
// shape it needs and treats anything else as "not a job", never as a crash.

export interface Pod {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: PodMetadata;
  readonly spec?: { readonly containers?: readonly Container[] };
  readonly status?: { readonly containerStatuses?: readonly ContainerStatus[] };
}

export interface PodMetadata {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly creationTimestamp?: string;
  readonly deletionTimestamp?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface Container {
  readonly name?: string;
  readonly resources?: unknown;
}

export interface ContainerStatus {
  readonly name?: string;
  readonly state?: {
    readonly terminated?: TerminatedState;
    readonly running?: unknown;
    readonly waiting?: unknown;
  };
}

export interface TerminatedState {
  readonly exitCode?: number;
  readonly reason?: string;
  readonly startedAt?: string | null;
  readonly finishedAt?: string | null;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** "namespace/name", for logs and annotations. */
export function podRef(pod: Pod): string {
  return `${pod.metadata?.namespace ?? "?"}/${pod.metadata?.name ?? "?"}`;
}

/** The identity of one pod incarnation: its uid, or its name when a hand-written pod has none. */
export function podKey(pod: Pod): string {
  return pod.metadata?.uid ?? podRef(pod);
}
