// Is this pod one of our jobs? (SPEC.md section 2) Both halves ask: measurement of events, and
// admission of new pods.
import { appIdProblem, resolveAppId, type AppIdPath } from "./app-id.js";
import { authoredContainers, clip, isRecord, podNamespace, type Container, type Pod } from "./pod.js";

export interface JobCriteria {
  readonly namespaces: ReadonlySet<string>;
  readonly appIdPath: AppIdPath;
  /** The OPTUNE_APP_ID text, to name it in reasons. */
  readonly appIdSpec: string;
}

export type JobSelection =
  | { readonly job: true; readonly appId: string }
  | {
      readonly job: false;
      readonly code: "not-watched" | "no-app-id" | "bad-app-id";
      readonly reason: string;
      /** A shape worth a warning: the app id is there but cannot be sent. */
      readonly odd?: true;
    };

export function selectJob(pod: Pod, criteria: JobCriteria): JobSelection {
  const namespace = podNamespace(pod);
  if (namespace === undefined || !criteria.namespaces.has(namespace)) {
    return { job: false, code: "not-watched", reason: `namespace ${namespace === undefined ? "(none)" : clip(namespace)} is not watched` };
  }
  const appId = resolveAppId(pod, criteria.appIdPath);
  if (appId === undefined) return { job: false, code: "no-app-id", reason: `no app id at ${criteria.appIdSpec}` };
  const problem = appIdProblem(appId);
  if (problem !== undefined) return { job: false, code: "bad-app-id", reason: problem, odd: true };
  return { job: true, appId };
}

/**
 * The job container is the first container of the pod spec that a mesh did not inject: its status
 * is measured (matched by its name), its resources adjusted.
 */
export function jobContainer(pod: Pod): Container | undefined {
  const containers = pod.spec?.containers;
  const first = Array.isArray(containers) ? authoredContainers(containers)[0] : undefined;
  return isRecord(first) ? first : undefined;
}
