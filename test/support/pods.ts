// Literal pods for unit tests: the smallest shapes the API server would send, built from a few
// named facts so each test says only what matters to it.
import type { Pod } from "../../handler/jobs/pod.js";

export interface JobPodFacts {
  readonly namespace?: string;
  readonly name?: string;
  readonly uid?: string;
  readonly jobId?: string | null;
  readonly startedAt?: string | null;
  readonly finishedAt?: string | null;
  readonly exitCode?: number;
  readonly reason?: string;
  readonly running?: boolean;
  readonly annotations?: Record<string, string>;
  readonly resources?: unknown;
  readonly resourceVersion?: string;
  readonly creationTimestamp?: string;
}

/** A Job-owned pod whose container "worker" ran 42 s (09:01:04 → 09:01:46) unless told otherwise. */
export function jobPod(facts: JobPodFacts = {}): Pod {
  const {
    namespace = "batch",
    name = "resize-images-8kq2x",
    uid = "c39ce9f7-656a-4ff0-ad36-43877d3ad4fb",
    jobId = "resize-images",
    startedAt = "2026-11-24T09:01:04Z",
    finishedAt = "2026-11-24T09:01:46Z",
    exitCode = 0,
    reason = "Completed",
    running = false,
    creationTimestamp = "2026-11-24T09:01:00Z",
  } = facts;
  const resources = "resources" in facts ? facts.resources : { limits: { cpu: "500m" } };
  const state = running ? { running: { startedAt } } : { terminated: { exitCode, reason, startedAt, finishedAt } };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace,
      uid,
      creationTimestamp,
      resourceVersion: facts.resourceVersion ?? "1",
      ...(facts.annotations === undefined ? {} : { annotations: facts.annotations }),
    },
    spec: {
      containers: [
        {
          name: "worker",
          env: jobId === null ? [] : [{ name: "JOBID", value: jobId }],
          ...(resources === undefined ? {} : { resources }),
        } as never,
      ],
    },
    status: { containerStatuses: [{ name: "worker", state }] },
  };
}

/** Service meshes' injected proxies, as their injectors write them into a job pod. */
export type Mesh = "linkerd" | "istio";
const PROXIES: Record<Mesh, { readonly name: string; readonly image: string }> = {
  linkerd: { name: "linkerd-proxy", image: "cr.l5d.io/linkerd/proxy:edge-25.1.1" },
  istio: { name: "istio-proxy", image: "docker.io/istio/proxyv2:1.24.0" },
};

/**
 * The job pod with the mesh's proxy injected before its container: as `containers[0]` (Linkerd;
 * Istio with holdApplicationUntilProxyStarts), or as a native sidecar (an init container with
 * restartPolicy Always; Linkerd's and Istio's native-sidecar modes).
 */
export function meshedJobPod(mesh: Mesh, as: "container" | "native-sidecar", facts: JobPodFacts = {}): Pod {
  const pod = jobPod(facts);
  const proxy = { ...PROXIES[mesh], env: [{ name: "JOBID", value: "" }], resources: { limits: { cpu: "100m", memory: "128Mi" } } };
  const proxyState = { running: { startedAt: "2026-11-24T09:01:02Z" } };
  const spec = pod.spec as { containers: unknown[] };
  const status = pod.status as { containerStatuses: unknown[] };
  return as === "container"
    ? { ...pod, spec: { ...spec, containers: [proxy, ...spec.containers] }, status: { ...status, containerStatuses: [{ name: proxy.name, state: proxyState }, ...status.containerStatuses] } }
    : {
        ...pod,
        spec: { ...spec, initContainers: [{ ...proxy, restartPolicy: "Always" }] },
        status: { ...status, initContainerStatuses: [{ name: proxy.name, state: proxyState }] } as never,
      };
}
