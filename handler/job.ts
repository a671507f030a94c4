// Is this pod one of our jobs? (SPEC.md section 2)
import { resolveAppId, type AppIdPath } from "./app-id.js";
import type { Pod } from "./pod.js";

export interface JobCriteria {
  readonly namespaces: ReadonlySet<string>;
  readonly appIdPath: AppIdPath;
  /** The OPTUNE_APP_ID text, to name it in reasons. */
  readonly appIdSpec: string;
}

export type JobSelection =
  | { readonly job: true; readonly appId: string }
  | { readonly job: false; readonly reason: string };

export function selectJob(pod: Pod, criteria: JobCriteria): JobSelection {
  const namespace = pod.metadata?.namespace;
  if (namespace === undefined || !criteria.namespaces.has(namespace)) {
    return { job: false, reason: `namespace ${namespace ?? "(none)"} is not watched` };
  }
  const appId = resolveAppId(pod, criteria.appIdPath);
  if (appId === undefined) return { job: false, reason: `no app id at ${criteria.appIdSpec}` };
  return { job: true, appId };
}
