// The JSON Patch (RFC 6902) operations the webhook writes, applied to a copy of the pod, so that
// `admit` can show the pod as the API server will store it. Only what we emit: add and remove.
import type { PatchOperation } from "./patch.js";

export function applyPatch<T>(document: T, patch: readonly PatchOperation[]): T {
  const copy = structuredClone(document) as unknown;
  for (const operation of patch) {
    const keys = operation.path.split("/").slice(1).map((key) => key.replaceAll("~1", "/").replaceAll("~0", "~"));
    const last = keys.pop();
    if (last === undefined) throw new Error(`cannot apply ${operation.op} at the document root`);
    let parent = copy as Record<string, unknown>;
    for (const key of keys) {
      const next = Array.isArray(parent) ? parent[Number(key)] : parent[key];
      if (typeof next !== "object" || next === null) throw new Error(`no ${operation.path} to ${operation.op}`);
      parent = next as Record<string, unknown>;
    }
    if (operation.op === "remove") {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else if (Array.isArray(parent)) {
      parent.splice(last === "-" ? parent.length : Number(last), 0, operation.value);
    } else {
      parent[last] = operation.value;
    }
  }
  return copy as T;
}
