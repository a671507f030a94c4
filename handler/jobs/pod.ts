// The parts of a Pod we read, as the API server serialises them (JSON, timestamps as RFC 3339
// strings). Events are untrusted input, so every leaf is `unknown`: the type checker makes each
// stage check the shape it needs, and a field of the wrong type means "not a job", never a crash.

export interface Pod {
  readonly apiVersion?: unknown;
  readonly kind?: unknown;
  readonly metadata?: PodMetadata;
  readonly spec?: PodSpec;
  readonly status?: PodStatus;
}

export interface PodMetadata {
  readonly name?: unknown;
  readonly generateName?: unknown;
  readonly namespace?: unknown;
  readonly uid?: unknown;
  readonly resourceVersion?: unknown;
  readonly creationTimestamp?: unknown;
  readonly deletionTimestamp?: unknown;
  readonly deletionGracePeriodSeconds?: unknown;
  /** Counts changes of the spec (an in-place resize is one). */
  readonly generation?: unknown;
  readonly labels?: unknown;
  readonly annotations?: unknown;
  readonly finalizers?: unknown;
}

export interface PodSpec {
  readonly nodeName?: unknown;
  readonly containers?: unknown;
  readonly initContainers?: unknown;
  readonly restartPolicy?: unknown;
  /** Pod-level requests and limits (Kubernetes 1.34+, beta): a budget for the whole pod. */
  readonly resources?: unknown;
  /** What the RuntimeClass adds to the pod's requests (and quota usage). */
  readonly overhead?: unknown;
}

export interface PodStatus {
  readonly phase?: unknown;
  /** Why the pod failed as a whole, e.g. DeadlineExceeded (activeDeadlineSeconds), Evicted. */
  readonly reason?: unknown;
  readonly conditions?: unknown;
  readonly containerStatuses?: unknown;
}

export interface Container {
  readonly name?: unknown;
  readonly env?: unknown;
  readonly resources?: unknown;
  /** Kubernetes 1.35+ (ContainerRestartRules): overrides the pod's restartPolicy for this container. */
  readonly restartPolicy?: unknown;
  /** Kubernetes 1.35+: rules on the exit code, checked in order before the container's restartPolicy. */
  readonly restartPolicyRules?: unknown;
}

export interface ContainerStatus {
  readonly name?: unknown;
  /** What the container has (Kubernetes 1.35+, in-place resize): may differ from what the spec asks. */
  readonly resources?: unknown;
  readonly restartCount?: unknown;
  readonly state?: ContainerState;
  readonly lastState?: ContainerState;
}

export interface ContainerState {
  readonly terminated?: unknown;
  readonly running?: unknown;
  readonly waiting?: unknown;
}

export interface TerminatedState {
  readonly exitCode?: unknown;
  readonly reason?: unknown;
  readonly startedAt?: unknown;
  readonly finishedAt?: unknown;
}

/**
 * The proxies service meshes inject into pods: Linkerd's always as containers[0], Istio's there
 * with holdApplicationUntilProxyStarts, either as a native sidecar (an init container with
 * restartPolicy Always) in their native-sidecar modes. The pod's author wrote none of them.
 */
export const MESH_PROXIES: ReadonlySet<string> = new Set(["linkerd-proxy", "istio-proxy"]);

/** A container list as the pod's author wrote it: without the proxies a mesh injected. */
export function authoredContainers(containers: readonly unknown[]): unknown[] {
  return containers.filter((container) => !(isRecord(container) && typeof container.name === "string" && MESH_PROXIES.has(container.name)));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/** The value when it is a string, else undefined. */
export function text(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

export const podNamespace = (pod: Pod): string | undefined => text(pod.metadata?.namespace);
export const podName = (pod: Pod): string | undefined => text(pod.metadata?.name);

/** The pod's uid; a uid that is not a string counts as missing. */
export const podUid = (pod: Pod): string | undefined => text(pod.metadata?.uid);

/** One annotation's value, when the pod has it as a string. */
export function podAnnotation(pod: Pod, key: string): string | undefined {
  const annotations = pod.metadata?.annotations;
  return isRecord(annotations) && Object.hasOwn(annotations, key) ? text(annotations[key]) : undefined;
}

/** A non-negative integer that JSON can carry exactly. */
export function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** A bounded, printable rendering of an untrusted value for a reason or a log line. */
export function excerpt(value: unknown, max = 64): string {
  const shown =
    typeof value === "string" ? JSON.stringify(value)
    : Array.isArray(value) ? "(an array)"
    : typeof value === "object" && value !== null ? "(an object)"
    : String(value);
  return clip(shown, max);
}

/** At most `max` characters: Kubernetes names are at most 253, so a longer one is cut for logs. */
export function clip(value: string, max = 253): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A pod name as the API server allows it (a DNS-1123 subdomain): never "", "." or "..", which would change a request's path. */
export function isPodName(name: unknown): name is string {
  return typeof name === "string" && name.length <= 253 && DNS_SUBDOMAIN.test(name);
}

/** A namespace name (a DNS-1123 label). */
export function isNamespaceName(name: unknown): name is string {
  return typeof name === "string" && DNS_LABEL.test(name);
}

/** "namespace/name", for logs and annotations. */
export function podRef(pod: Pod): string {
  return `${clip(podNamespace(pod) ?? "?")}/${clip(podName(pod) ?? "?")}`;
}

/** The identity of one pod incarnation: its uid, or its name when a hand-written pod has none. */
export function podKey(pod: Pod): string {
  return podUid(pod) ?? podRef(pod);
}
