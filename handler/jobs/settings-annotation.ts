// The annotation optune.ai/settings: written by the adjusting half when it admits a job pod with
// Optune's settings, read by the measuring half so the MEASUREMENT says what the run ran with.
import { isRecord, podAnnotation, type Container, type Pod } from "./pod.js";
import { ranWith } from "./ran-with.js";
import { parseCpu, parseMemory } from "./quantity.js";

export const SETTINGS_ANNOTATION = "optune.ai/settings";

/** What one container is set to: cpu in cores, mem in bytes. */
export interface ContainerSettings {
  readonly container: string;
  readonly cpu?: number;
  readonly mem?: number;
}

/** What was applied, as the annotation records it: cores to the millicore, whole bytes. */
export function applied(settings: ContainerSettings): ContainerSettings {
  return {
    container: settings.container,
    ...(settings.cpu === undefined ? {} : { cpu: Math.round(settings.cpu * 1000) / 1000 }),
    ...(settings.mem === undefined ? {} : { mem: Math.round(settings.mem) }),
  };
}

/** The annotation's value: one object for one container (the usual case), a list for several. */
export function settingsValue(settings: readonly ContainerSettings[]): string {
  const record = settings.map(applied);
  return JSON.stringify(record.length === 1 ? record[0] : record);
}

/** Annotations are at most 256 KiB together; a settings value is a few dozen bytes. */
const MAX_VALUE_LENGTH = 4096;

/**
 * The pod's settings annotation as compact JSON, re-written from what it can hold (container
 * names and numbers), or undefined when there is none, it is not ours, or it disagrees with the
 * containers' own resources (settingsDisagreement says how).
 */
export function settingsOf(pod: Pod): string | undefined {
  const read = readSettings(pod);
  return read !== undefined && "text" in read ? read.text : undefined;
}

/**
 * Why the settings annotation cannot be what the pod runs with: a container it names does not
 * have those limits (its status's after an in-place resize, else its spec's). The webhook writes
 * limits and requests together, so they must match.
 */
export function settingsDisagreement(pod: Pod): string | undefined {
  const read = readSettings(pod);
  return read !== undefined && "disagreement" in read ? read.disagreement : undefined;
}

/** Both answers from one reading: the settings as sent, or why they are not what ran; undefined: no settings of ours. */
export function readSettings(pod: Pod): { readonly text: string } | { readonly disagreement: string } | undefined {
  const parsed = parsedSettings(pod);
  if (parsed === undefined) return undefined;
  const why = disagreement(pod, parsed.settings);
  return why === undefined ? { text: parsed.text } : { disagreement: why };
}

function disagreement(pod: Pod, settings: readonly ContainerSettings[]): string | undefined {
  const containers = Array.isArray(pod.spec?.containers) ? (pod.spec.containers as unknown[]) : [];
  for (const setting of settings) {
    const container = containers.find((item) => isRecord(item) && item.name === setting.container);
    // What the container ran with: after an in-place resize, its status's resources, not the spec's.
    const had = isRecord(container) ? ranWith(pod, container as Container).resources : undefined;
    const resources = isRecord(had) ? had : {};
    const limits = isRecord(resources.limits) ? resources.limits : {};
    const { cpu, mem } = applied(setting);
    if (cpu !== undefined && parseCpu(limits.cpu) !== cpu) return `the settings say cpu ${cpu} for ${setting.container.slice(0, 63)}, its limit is ${String(limits.cpu ?? "unset").slice(0, 32)}`;
    if (mem !== undefined && parseMemory(limits.memory) !== mem) return `the settings say mem ${mem} for ${setting.container.slice(0, 63)}, its limit is ${String(limits.memory ?? "unset").slice(0, 32)}`;
  }
  return undefined;
}

function parsedSettings(pod: Pod): { readonly text: string; readonly settings: readonly ContainerSettings[] } | undefined {
  const value = podAnnotation(pod, SETTINGS_ANNOTATION);
  if (value === undefined || value.length > MAX_VALUE_LENGTH) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  const settings: ContainerSettings[] = [];
  for (const item of items) {
    if (!isRecord(item) || typeof item.container !== "string") return undefined;
    const cpu = item.cpu;
    const mem = item.mem;
    if ((cpu !== undefined && !Number.isFinite(cpu)) || (mem !== undefined && !Number.isFinite(mem))) return undefined;
    settings.push({ container: item.container, ...(cpu === undefined ? {} : { cpu: cpu as number }), ...(mem === undefined ? {} : { mem: mem as number }) });
  }
  return settings.length === 0 ? undefined : { text: JSON.stringify(Array.isArray(parsed) ? settings : settings[0]), settings };
}
