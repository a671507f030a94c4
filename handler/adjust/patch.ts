// From (pod, settings) to the JSON Patch (RFC 6902) an admission answers with. Pure. Built against
// the pod exactly as the API server holds it: a patch that does not apply rejects the pod even with
// failurePolicy Ignore, so a missing parent is added whole, never assumed.
import { isRecord, type Pod } from "../jobs/pod.js";
import { formatCpu, formatMemory } from "../jobs/quantity.js";
import { SETTINGS_ANNOTATION, settingsValue, type ContainerSettings } from "../jobs/settings-annotation.js";
import { HOLD_FINALIZER } from "../measure/hold.js";

export type PatchOperation = { readonly op: "add"; readonly path: string; readonly value: unknown } | { readonly op: "remove"; readonly path: string };

/**
 * Removes a settings annotation the pod was created with: only the webhook may say what a pod
 * runs with, or its MEASUREMENT would credit the run to settings it never had.
 */
export function foreignSettingsPatch(pod: Pod): PatchOperation[] {
  const annotations = isRecord(pod.metadata) ? pod.metadata.annotations : undefined;
  return isRecord(annotations) && Object.hasOwn(annotations, SETTINGS_ANNOTATION) ? [{ op: "remove", path: `/metadata/annotations/${pointer(SETTINGS_ANNOTATION)}` }] : [];
}

/**
 * Sets each adjusted container's limits and requests to the new values (a lowered limit must lower
 * the request too, or the pod fails validation) and records the settings in the annotation.
 */
export function adjustmentPatch(pod: Pod, settings: readonly ContainerSettings[]): PatchOperation[] {
  const containers = Array.isArray(pod.spec?.containers) ? (pod.spec.containers as unknown[]) : [];
  const operations: PatchOperation[] = [];
  for (const setting of settings) {
    const index = containers.findIndex((container) => isRecord(container) && container.name === setting.container);
    if (index === -1) throw new Error(`no container ${setting.container} in the pod`); // checkAdjust makes this impossible
    const quantities: Record<string, string> = {};
    if (setting.cpu !== undefined) quantities.cpu = formatCpu(setting.cpu);
    if (setting.mem !== undefined) quantities.memory = formatMemory(setting.mem);
    operations.push(...resourcesPatch(`/spec/containers/${index}`, containers[index] as Record<string, unknown>, quantities));
  }
  operations.push(annotationPatch(pod, SETTINGS_ANNOTATION, settingsValue(settings)));
  return operations;
}

/**
 * Holds the job pod until its MEASUREMENT is sent (measure/hold.ts): our finalizer, added to the
 * pod as the operations before this one leave it.
 */
export function holdPatch(pod: Pod): PatchOperation[] {
  if (!isRecord(pod.metadata)) return [{ op: "add", path: "/metadata", value: { finalizers: [HOLD_FINALIZER] } }];
  const list = pod.metadata.finalizers;
  if (!Array.isArray(list)) return [{ op: "add", path: "/metadata/finalizers", value: [HOLD_FINALIZER] }];
  return list.includes(HOLD_FINALIZER) ? [] : [{ op: "add", path: "/metadata/finalizers/-", value: HOLD_FINALIZER }];
}

function resourcesPatch(base: string, container: Record<string, unknown>, quantities: Readonly<Record<string, string>>): PatchOperation[] {
  const resources = container.resources;
  if (!isRecord(resources)) return [{ op: "add", path: `${base}/resources`, value: { limits: { ...quantities }, requests: { ...quantities } } }];
  const operations: PatchOperation[] = [];
  for (const kind of ["limits", "requests"] as const) {
    const map = resources[kind];
    if (!isRecord(map)) {
      operations.push({ op: "add", path: `${base}/resources/${kind}`, value: { ...quantities } });
      continue;
    }
    // "add" on a member that exists replaces its value (RFC 6902 section 4.1).
    for (const [name, quantity] of Object.entries(quantities)) operations.push({ op: "add", path: `${base}/resources/${kind}/${pointer(name)}`, value: quantity });
  }
  return operations;
}

function annotationPatch(pod: Pod, key: string, value: string): PatchOperation {
  if (!isRecord(pod.metadata)) return { op: "add", path: "/metadata", value: { annotations: { [key]: value } } };
  if (!isRecord(pod.metadata.annotations)) return { op: "add", path: "/metadata/annotations", value: { [key]: value } };
  return { op: "add", path: `/metadata/annotations/${pointer(key)}`, value };
}

/** A JSON Pointer (RFC 6901) reference token: "~" is "~0", "/" is "~1". */
export function pointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}
