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
