// What a namespace admits: a setting above a LimitRange's max (or below its min), or beyond what a
// ResourceQuota has left, makes the API server refuse the pod after the webhook allowed it, so the
// pod would be blocked although failurePolicy is Ignore. Pure: the namespace's LimitRanges and
// ResourceQuotas (as the API server serialises them) and the pod in, the ranges Optune may use out.
// A LimitRange of type Pod and a quota count the pod as the API server does
// (k8s.io/component-helpers resource.PodRequests/PodLimits): the regular containers, native
// sidecars (init containers with restartPolicy Always) beside them, the largest init step, and the
// pod overhead. (Pods with pod-level resources are not adjusted at all: see admit.ts.)
import type { SettingRange } from "../edges/config.js";
import { isRecord, text, type Pod } from "../jobs/pod.js";
import { parseCpu, parseMemory } from "../jobs/quantity.js";
import type { Ranges, SettingName } from "./settings.js";

export interface NamespacePolicies {
  readonly limitRanges: readonly unknown[];
  readonly quotas: readonly unknown[];
}

const RESOURCE: Readonly<Record<SettingName, string>> = { cpu: "cpu", mem: "memory" };
const PARSE: Readonly<Record<SettingName, (quantity: unknown) => number | undefined>> = { cpu: parseCpu, mem: parseMemory };

/**
 * The configured ranges narrowed to what the namespace admits for `component` (limits and
 * requests are both set to the value), or why nothing in them would be admitted.
 */
export function admittedRanges(ranges: Ranges, policies: NamespacePolicies, pod: Pod, component: string): { readonly ranges: Ranges } | { readonly none: string } {
  const narrowed = {} as Record<SettingName, SettingRange>;
  for (const name of ["cpu", "mem"] as const) {
    const { min, max, why } = bounds(name, policies, pod, component);
    const range = ranges[name];
    // Stay on the configured grid: the lowest and highest steps inside both bounds.
    const low = Math.max(range.min, min);
    const high = Math.min(range.max, max);
    const first = range.min + Math.ceil((low - range.min) / range.step - 1e-9) * range.step;
    const last = range.min + Math.floor((high - range.min) / range.step + 1e-9) * range.step;
    if (!(first <= last)) return { none: `the namespace admits no ${name} in ${range.min}..${range.max}: ${why.join(", ")}` };
    narrowed[name] = first === range.min && last === range.max ? range : { min: round(first), max: round(last), step: range.step };
  }
  return { ranges: narrowed };
}

function bounds(name: SettingName, policies: NamespacePolicies, pod: Pod, component: string): { min: number; max: number; why: string[] } {
  const resource = RESOURCE[name];
  const parse = PARSE[name];
  let min = 0;
  let max = Infinity;
  const why: string[] = [];
  for (const range of policies.limitRanges) {
    const limits = isRecord(range) && isRecord(range.spec) && Array.isArray(range.spec.limits) ? range.spec.limits : [];
    for (const item of limits) {
      if (!isRecord(item)) continue;
      const itemMax = isRecord(item.max) ? parse(item.max[resource]) : undefined;
      const itemMin = isRecord(item.min) ? parse(item.min[resource]) : undefined;
      if (item.type === "Container") {
        if (itemMax !== undefined && itemMax < max) (max = itemMax), why.push(`LimitRange max ${resource} per container ${itemMax}`);
        if (itemMin !== undefined && itemMin > min) (min = itemMin), why.push(`LimitRange min ${resource} per container ${itemMin}`);
      } else if (item.type === "Pod" && itemMax !== undefined) {
        const left = itemMax - besideComponent(pod, component, "limits", resource, parse);
        if (left < max) (max = left), why.push(`LimitRange max ${resource} per pod ${itemMax}`);
      }
    }
  }
  for (const quota of policies.quotas) {
    const status = isRecord(quota) && isRecord(quota.status) ? quota.status : {};
    const hard = isRecord(status.hard) ? status.hard : {};
    const used = isRecord(status.used) ? status.used : {};
    // A quota on requests (also spelled without the prefix) or on limits: the pod adds its sum.
    for (const [key, kind] of [[resource, "requests"], [`requests.${resource}`, "requests"], [`limits.${resource}`, "limits"]] as const) {
      const limit = parse(hard[key]);
      if (limit === undefined) continue;
      const left = limit - (parse(used[key]) ?? 0) - besideComponent(pod, component, kind, resource, parse);
      if (left < max) (max = left), why.push(`ResourceQuota ${text(isRecord(quota) && isRecord(quota.metadata) ? quota.metadata.name : undefined) ?? "?"} has ${Math.max(0, round(left))} ${key} left`);
    }
  }
  return { min, max, why };
}

/**
 * What the pod counts for `resource` besides the component's own value v, where the API server
 * counts max(v + the other containers + the sidecars, the largest init step) + overhead: bounding
 * v + this by a cap bounds the pod (the init steps do not depend on v).
 */
function besideComponent(pod: Pod, component: string, kind: "limits" | "requests", resource: string, parse: (quantity: unknown) => number | undefined): number {
  const sidecars = initContainers(pod).filter((container) => container.restartPolicy === "Always");
  const overhead = isRecord(pod.spec?.overhead) ? (parse(pod.spec.overhead[resource]) ?? 0) : 0;
  return sum(otherContainers(pod, component), kind, resource, parse) + sum(sidecars, kind, resource, parse) + overhead;
}

function initContainers(pod: Pod): Record<string, unknown>[] {
  const containers = Array.isArray(pod.spec?.initContainers) ? (pod.spec.initContainers as unknown[]) : [];
  return containers.filter((container): container is Record<string, unknown> => isRecord(container));
}

function otherContainers(pod: Pod, component: string): Record<string, unknown>[] {
  const containers = Array.isArray(pod.spec?.containers) ? (pod.spec.containers as unknown[]) : [];
  return containers.filter((container): container is Record<string, unknown> => isRecord(container) && container.name !== component);
}

function sum(containers: readonly Record<string, unknown>[], kind: "limits" | "requests", resource: string, parse: (quantity: unknown) => number | undefined): number {
  let total = 0;
  for (const container of containers) {
    const resources = isRecord(container.resources) ? container.resources : {};
    const map = isRecord(resources[kind]) ? resources[kind] : isRecord(resources.limits) ? resources.limits : {};
    total += parse((map as Record<string, unknown>)[resource]) ?? 0;
  }
  return total;
}

function round(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}
