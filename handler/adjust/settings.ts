// What Optune may tune in a job pod (ADJUST.md section 1): the DESCRIPTION of the job container's
// cpu and memory, and the check of an ADJUST's settings against the pod and the ranges. Pure.
import type { SettingRange } from "../edges/config.js";
import { jobContainer } from "../jobs/job.js";
import { clip, isRecord, text, type Container, type Pod } from "../jobs/pod.js";
import type { ContainerSettings } from "../jobs/settings-annotation.js";
import { parseCpu, parseMemory } from "../jobs/quantity.js";

export type SettingName = "cpu" | "mem";
export type Ranges = Readonly<Record<SettingName, SettingRange>>;

const UNITS: Readonly<Record<SettingName, string>> = { cpu: "cores", mem: "bytes" };
const RESOURCE: Readonly<Record<SettingName, string>> = { cpu: "cpu", mem: "memory" };
const PARSE: Readonly<Record<SettingName, (quantity: unknown) => number | undefined>> = { cpu: parseCpu, mem: parseMemory };

/** The metrics a MEASUREMENT carries, as the daemon described them (beside `application`, not inside). */
const METRICS = { duration: { unit: "s" }, est_duration: { unit: "s" }, perf: { unit: "1/s" } } as const;
/** With Prometheus configured, each run's CPU seconds and peak memory too (the servo's names). */
const RESOURCE_METRICS = { ...METRICS, cpu_time: { unit: "s" }, max_memory: { unit: "bytes" } } as const;

/** The DESCRIPTION param for a pod whose job container is named `component`. */
export function description(pod: Pod, component: string, ranges: Ranges, resourceMetrics = false): object {
  const container = jobContainer(pod);
  const setting = (name: SettingName) => ({ type: "range", unit: UNITS[name], ...ranges[name], value: currentValue(container, name) });
  return { application: { components: { [component]: { settings: { cpu: setting("cpu"), mem: setting("mem") } } } }, metrics: resourceMetrics ? RESOURCE_METRICS : METRICS };
}

/**
 * The container's limit for the setting, else its request, else null: unset (as the later Opsani
 * servos describe a setting without a value), not the range's minimum, which it does not run at.
 */
export function currentValue(container: Container | undefined, name: SettingName): number | null {
  const resources = isRecord(container?.resources) ? container.resources : {};
  for (const kind of ["limits", "requests"] as const) {
    const map = resources[kind];
    const value = isRecord(map) ? PARSE[name](map[RESOURCE[name]]) : undefined;
    if (value !== undefined) return value;
  }
  return null;
}

export type AdjustCheck = { readonly ok: true; readonly settings: readonly ContainerSettings[] } | { readonly ok: false; readonly message: string };

/**
 * The settings of an ADJUST command's param, checked: each component is a container of the pod,
 * each setting is cpu or mem with a numeric value within its range and on its step. Settings are
 * read from `param.state.application.components` (or the old daemon's `param.application.components`).
 */
export function checkAdjust(param: unknown, pod: Pod, ranges: Ranges): AdjustCheck {
  const state = isRecord(param) && isRecord(param.state) ? param.state : param;
  const components = isRecord(state) && isRecord(state.application) ? state.application.components : undefined;
  if (!isRecord(components)) return refused("ADJUST has no application.components");
  const names = containerNames(pod);
  const settings: ContainerSettings[] = [];
  for (const [component, spec] of Object.entries(components)) {
    if (!names.has(component)) return refused(`component ${JSON.stringify(clip(component, 63))} is not a container of the pod`);
    const values = isRecord(spec) ? spec.settings : undefined;
    if (!isRecord(values)) return refused(`component ${component} has no settings`);
    const checked: { container: string; cpu?: number; mem?: number } = { container: component };
    for (const [name, setting] of Object.entries(values)) {
      if (name !== "cpu" && name !== "mem") return refused(`setting ${JSON.stringify(clip(name, 63))} of ${component} is not cpu or mem`);
      const value = isRecord(setting) ? setting.value : undefined;
      const problem = rangeProblem(value, ranges[name]);
      if (problem !== undefined) return refused(`${component} ${name} ${problem}`);
      checked[name] = value as number;
    }
    if (checked.cpu !== undefined || checked.mem !== undefined) settings.push(checked);
  }
  if (settings.length === 0) return refused("ADJUST sets nothing");
  return { ok: true, settings };
}

/** Why `value` is not a valid setting in `range`, or undefined. A tiny float tolerance on the step. */
function rangeProblem(value: unknown, range: SettingRange): string | undefined {
  if (typeof value !== "number" || !Number.isFinite(value)) return "is not a number";
  if (value < range.min - range.step * 1e-6 || value > range.max + range.step * 1e-6) return `${value} is outside ${range.min}..${range.max}`;
  const steps = (value - range.min) / range.step;
  if (Math.abs(steps - Math.round(steps)) > 1e-6) return `${value} is not on the step ${range.step} from ${range.min}`;
  return undefined;
}

function containerNames(pod: Pod): Set<string> {
  const containers = pod.spec?.containers;
  const names = new Set<string>();
  if (Array.isArray(containers)) for (const container of containers) if (isRecord(container) && text(container.name) !== undefined) names.add(container.name as string);
  return names;
}

function refused(message: string): AdjustCheck {
  return { ok: false, message };
}
