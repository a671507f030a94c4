// The annotation optune.ai/settings: written by the adjusting half when it admits a job pod with
// Optune's settings, read by the measuring half so the MEASUREMENT says what the run ran with.
import { isRecord, podAnnotation, type Pod } from "./pod.js";

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
 * names and numbers), or undefined when there is none or it is not ours.
 */
export function settingsOf(pod: Pod): string | undefined {
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
  return settings.length === 0 ? undefined : JSON.stringify(Array.isArray(parsed) ? settings : settings[0]);
}
