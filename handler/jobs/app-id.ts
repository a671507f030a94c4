// OPTUNE_APP_ID: a path into the pod object that names the job's Optune application
// (SPEC.md section 2). The syntax is the Python daemon's, kept because users rely on it.
import { authoredContainers, isRecord } from "./pod.js";

export type AppIdStep =
  /** A key into a map, or an index into an array when the element is a number. */
  | { readonly kind: "field"; readonly name: string }
  /** `[key,keyField,valueField]`: the item of an array of maps whose keyField is key; take its valueField. */
  | { readonly kind: "pick"; readonly key: string; readonly keyField: string; readonly valueField: string };

export type AppIdPath = readonly AppIdStep[];

const INDEX = /^[0-9]+$/;

/** Parses the path syntax; throws an Error saying what is wrong (the caller names the variable). */
export function parseAppIdPath(spec: string): AppIdPath {
  const steps: AppIdStep[] = [];
  for (const element of spec.split("/")) {
    if (element === "") continue;
    if (element.startsWith("[") || element.endsWith("]")) {
      steps.push(parsePick(element));
    } else {
      steps.push({ kind: "field", name: element });
    }
  }
  if (steps.length === 0) throw new Error(`has no path elements (e.g. "spec/containers/0/env/[JOBID]")`);
  return steps;
}

function parsePick(element: string): AppIdStep {
  if (!element.startsWith("[") || !element.endsWith("]")) {
    throw new Error(`has an unbalanced bracket in "${element}"`);
  }
  const parts = element.slice(1, -1).split(",");
  if (parts.some((part) => part === "")) throw new Error(`has an empty name in "${element}"`);
  const [key, keyField = "name", valueField = "value"] = parts;
  if (key === undefined || (parts.length !== 1 && parts.length !== 3)) {
    throw new Error(`has "${element}", which must be [key] or [key,keyField,valueField]`);
  }
  return { kind: "pick", key, keyField, valueField };
}

/** The app id at `path` in `pod`: a non-empty string, or undefined when anything is missing or of the wrong shape. */
export function resolveAppId(pod: unknown, path: AppIdPath): string | undefined {
  let value: unknown = pod;
  for (const [index, step] of path.entries()) {
    // spec/containers/0 is the first container the pod's author wrote, even where a mesh injected its proxy before it.
    if (index === 2 && Array.isArray(value) && isContainerList(path)) value = authoredContainers(value);
    value = step.kind === "pick" ? pick(value, step) : field(value, step.name);
    if (value === undefined) return undefined;
  }
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** Whether the path's first two elements name the pod's containers or init containers. */
function isContainerList(path: AppIdPath): boolean {
  const [spec, list] = path;
  return spec?.kind === "field" && spec.name === "spec" && list?.kind === "field" && (list.name === "containers" || list.name === "initContainers");
}

function field(value: unknown, name: string): unknown {
  if (Array.isArray(value)) return INDEX.test(name) ? value[Number(name)] : undefined;
  if (isRecord(value)) return Object.hasOwn(value, name) ? value[name] : undefined;
  return undefined;
}

/** The last item with the key: a container's env may name a variable twice, and the last one is what it sees. */
function pick(value: unknown, step: Extract<AppIdStep, { kind: "pick" }>): unknown {
  if (!Array.isArray(value)) return undefined;
  const item: unknown = value.findLast((entry) => isRecord(entry) && entry[step.keyField] === step.key);
  return isRecord(item) && Object.hasOwn(item, step.valueField) ? item[step.valueField] : undefined;
}

/** Longer app ids are not sent: a URL path segment of Optune's, not a place for documents. */
export const MAX_APP_ID_BYTES = 1024;

/** Why this app id cannot name an Optune application in a URL path segment, or undefined when it can. */
export function appIdProblem(appId: string): string | undefined {
  // URL parsers drop "." and ".." segments even percent-encoded: the message would go elsewhere.
  if (appId === "." || appId === "..") return `app id "${appId}" would leave its URL path segment`;
  if (!appId.isWellFormed()) return "app id is not valid Unicode (it holds a lone UTF-16 surrogate)";
  const bytes = Buffer.byteLength(appId);
  if (bytes > MAX_APP_ID_BYTES) return `app id is ${bytes} bytes long, more than ${MAX_APP_ID_BYTES}`;
  return undefined;
}
