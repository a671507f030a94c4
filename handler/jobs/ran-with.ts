// What a container ran with. Since in-place resize (GA in 1.35) the spec says what is asked and
// status.containerStatuses[].resources what the container has: a refused resize (condition
// PodResizePending, reason Infeasible or Deferred) leaves the spec asking for more than ran, and a
// resize done mid-run leaves the final size in both. Both halves read it: the settings annotation
// is checked against it, and the MEASUREMENT reports it.
import { isRecord, type Container, type Pod } from "./pod.js";
import { parseCpu, parseMemory } from "./quantity.js";

export interface RanWith {
  /** The resources the container had: its status's when the API gives them, else its spec's. */
  readonly resources: unknown;
  /** The spec's, when they differ from the status's: a resize not (yet) done. */
  readonly requested?: unknown;
  /** Why the resize is pending (PodResizePending's reason), when it is. */
  readonly pendingReason?: string;
  /** The pod's spec changed after it was created (metadata.generation > 1): resized during the run. */
  readonly specChanged: boolean;
}

export function ranWith(pod: Pod, container: Container | undefined): RanWith {
  const name = container?.name;
  const statuses = Array.isArray(pod.status?.containerStatuses) ? (pod.status.containerStatuses as unknown[]) : [];
  const status = statuses.find((item) => isRecord(item) && item.name === name);
  const had = isRecord(status) && isRecord(status.resources) ? status.resources : undefined;
  const asked = container?.resources;
  const generation = pod.metadata?.generation;
  const specChanged = typeof generation === "number" && generation > 1;
  if (had === undefined || sameResources(had, asked)) return { resources: had ?? asked, specChanged };
  return { resources: had, requested: asked, ...pendingReason(pod), specChanged };
}

function pendingReason(pod: Pod): { pendingReason?: string } {
  const conditions = Array.isArray(pod.status?.conditions) ? (pod.status.conditions as unknown[]) : [];
  const pending = conditions.find((condition) => isRecord(condition) && condition.type === "PodResizePending" && condition.status === "True");
  return isRecord(pending) && typeof pending.reason === "string" ? { pendingReason: pending.reason.slice(0, 64) } : {};
}

/** Same limits and requests: cpu and memory by value ("1.5" is "1500m"), anything else as written. */
function sameResources(a: unknown, b: unknown): boolean {
  const pick = (value: unknown, key: string) => (isRecord(value) && isRecord(value[key]) ? value[key] : {});
  return equalMaps(pick(a, "limits"), pick(b, "limits")) && equalMaps(pick(a, "requests"), pick(b, "requests"));
}

function equalMaps(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) {
    const parse = key === "cpu" ? parseCpu : key === "memory" ? parseMemory : undefined;
    const byValue = parse !== undefined && parse(a[key]) !== undefined && parse(a[key]) === parse(b[key]);
    if (a[key] !== b[key] && !byValue) return false;
  }
  return true;
}
