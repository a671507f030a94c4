import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { assessPod as assessLazily } from "../handler/measure/assess.js";
import { parseAppIdPath } from "../handler/jobs/app-id.js";
import { estDuration } from "../handler/measure/measurement.js";
import type { Pod } from "../handler/jobs/pod.js";
import { jobPod, meshedJobPod } from "./support/pods.js";

/** The assessment with its MEASUREMENT built (the function builds it only when it sends it). */
const assessPod = (...args: Parameters<typeof assessLazily>) => {
  const assessment = assessLazily(...args);
  return assessment.kind === "report" ? { ...assessment, message: assessment.message() } : assessment;
};
const criteria = { namespaces: new Set(["batch"]), appIdPath: parseAppIdPath("spec/containers/0/env/[JOBID]"), appIdSpec: "spec/containers/0/env/[JOBID]" };

describe("the MEASUREMENT for a finished job", () => {
  test("a pod admitted with Optune's settings: the MEASUREMENT carries them as annotations.settings (compact JSON)", () => {
    const resources = { limits: { cpu: "1500m", memory: "512Mi" }, requests: { cpu: "1500m", memory: "512Mi" } };
    const assessment = assessPod(jobPod({ resources, annotations: { "optune.ai/settings": '{ "container": "worker", "cpu": 1.5, "mem": 536870912 }' } }), criteria);
    assert.ok(assessment.kind === "report" && "annotations" in assessment.message.param);
    assert.equal(assessment.message.param.annotations.settings, '{"container":"worker","cpu":1.5,"mem":536870912}');
    assert.equal(assessment.message.param.annotations.resources, JSON.stringify(resources));
  });

  test("a settings annotation the container's own resources contradict (the pod was created with it): no annotations.settings", () => {
    const assessment = assessPod(jobPod({ resources: { limits: { cpu: "500m", memory: "256Mi" } }, annotations: { "optune.ai/settings": '{"container":"worker","cpu":3.5,"mem":1073741824}' } }), criteria);
    assert.ok(assessment.kind === "report" && "annotations" in assessment.message.param);
    assert.equal("settings" in assessment.message.param.annotations, false);
  });

  test("no settings annotation, or one that is not ours: no annotations.settings", () => {
    for (const annotations of [undefined, { "optune.ai/settings": "tuned!" }]) {
      const assessment = assessPod(jobPod(annotations === undefined ? {} : { annotations }), criteria);
      assert.ok(assessment.kind === "report" && "annotations" in assessment.message.param);
      assert.equal("settings" in assessment.message.param.annotations, false);
    }
  });

  test("a completed job: duration, perf, resources, exit code and the extras", () => {
    assert.deepEqual(assessPod(jobPod(), criteria), {
      kind: "report",
      appId: "resize-images",
      runSeconds: 42,
      exitCode: 0,
      message: {
        event: "MEASUREMENT",
        param: {
          metrics: { duration: { value: 42, unit: "s" }, perf: { value: 1 / 42, unit: "1/s" } },
          annotations: {
            resources: '{"limits":{"cpu":"500m"}}',
            exitcode: 0,
            reason: "Completed",
            pod: "batch/resize-images-8kq2x",
            uid: "c39ce9f7-656a-4ff0-ad36-43877d3ad4fb",
          },
        },
      },
    });
  });

  test("the body is compact JSON with the keys in the documented order", () => {
    const assessment = assessPod(jobPod({ annotations: { "done-at": "1795510920" } }), criteria);
    assert.equal(assessment.kind, "report");
    assert.equal(
      JSON.stringify(assessment.kind === "report" && assessment.message),
      '{"event":"MEASUREMENT","param":{"metrics":{"duration":{"value":42,"unit":"s"},"perf":{"value":0.023809523809523808,"unit":"1/s"},' +
        '"est_duration":{"value":60,"unit":"s"}},"annotations":{"resources":"{\\"limits\\":{\\"cpu\\":\\"500m\\"}}","exitcode":0,' +
        '"reason":"Completed","pod":"batch/resize-images-8kq2x","uid":"c39ce9f7-656a-4ff0-ad36-43877d3ad4fb"}}}',
    );
  });

  test("a 0 s job has no perf", () => {
    const assessment = assessPod(jobPod({ finishedAt: "2026-11-24T09:01:04Z" }), criteria);
    assert.equal(assessment.kind, "report");
    if (assessment.kind === "report" && "metrics" in assessment.message.param) {
      assert.deepEqual(assessment.message.param.metrics, { duration: { value: 0, unit: "s" } });
    } else assert.fail("expected metrics");
  });

  test("a failed job is measured with its exit code and reason", () => {
    const assessment = assessPod(jobPod({ exitCode: 137, reason: "OOMKilled" }), criteria);
    assert.ok(assessment.kind === "report" && "annotations" in assessment.message.param);
    assert.equal(assessment.message.param.annotations.exitcode, 137);
    assert.equal(assessment.message.param.annotations.reason, "OOMKilled");
  });

  test("a job container without resources reports {}", () => {
    const assessment = assessPod(jobPod({ resources: undefined }), criteria);
    assert.ok(assessment.kind === "report" && "annotations" in assessment.message.param);
    assert.equal(assessment.message.param.annotations.resources, "{}");
  });

  test("a job that never ran gets the failure message, exactly", () => {
    const assessment = assessPod(jobPod({ startedAt: null, finishedAt: null, exitCode: 137, reason: "ContainerStatusUnknown" }), criteria);
    assert.deepEqual(assessment, {
      kind: "report",
      appId: "resize-images",
      exitCode: 137,
      message: { event: "MEASUREMENT", param: { status: "failed", message: "job deleted before it ran" } },
    });
  });

  test("est_duration is done-at minus creationTimestamp", () => {
    assert.equal(estDuration(jobPod({ annotations: { "done-at": "1795510950" } })), 90);
  });

  test("est_duration only for an integer done-at and a readable creationTimestamp", () => {
    for (const doneAt of ["soon", "", "1795510950.5", "0x10", "1e9"]) {
      assert.equal(estDuration(jobPod({ annotations: { "done-at": doneAt } })), undefined, doneAt);
    }
    assert.equal(estDuration(jobPod()), undefined);
    assert.equal(estDuration(jobPod({ annotations: { "done-at": "1795510950" }, creationTimestamp: "?" })), undefined);
  });
});

describe("which events are ignored, and why", () => {
  const ignored = (pod: Pod) => {
    const assessment = assessPod(pod, criteria);
    assert.equal(assessment.kind, "ignore");
    return assessment.kind === "ignore" ? assessment : assert.fail();
  };

  test("another kind of object", () => {
    assert.equal(ignored({ ...jobPod(), kind: "Event" }).reason, "not a Pod (kind Event)");
  });

  test("a namespace that is not watched", () => {
    assert.equal(ignored(jobPod({ namespace: "kube-system" })).reason, "namespace kube-system is not watched");
  });

  test("a pod without an app id", () => {
    assert.equal(ignored(jobPod({ jobId: null })).reason, "no app id at spec/containers/0/env/[JOBID]");
  });

  test("a job still running", () => {
    assert.equal(ignored(jobPod({ running: true })).reason, "job container has not finished");
  });

  test("a pod with no status yet", () => {
    const { status: _status, ...pod } = jobPod();
    assert.equal(ignored(pod).reason, "job container has not finished");
  });

  test("impossible timestamps are ignored as odd (a warning, not a crash)", () => {
    const assessment = ignored(jobPod({ startedAt: "2026-11-24T09:01:04Z", finishedAt: "2026-11-24T09:00:00Z" }));
    assert.equal(assessment.odd, true);
  });
});

describe("what the MEASUREMENT says a run had, on today's pods", () => {
  const annotationsOf = (pod: Pod) => {
    const assessment = assessPod(pod, criteria);
    assert.ok(assessment.kind === "report" && "annotations" in assessment.message.param, JSON.stringify(assessment));
    return { annotations: assessment.message.param.annotations, metrics: assessment.message.param.metrics, disrupted: assessment.disrupted };
  };
  const admitted = { limits: { cpu: "1500m", memory: "512Mi" }, requests: { cpu: "1500m", memory: "512Mi" } };
  const settings = { "optune.ai/settings": '{"container":"worker","cpu":1.5,"mem":536870912}' };
  /** The pod after a resize asked for `spec` resources, while its container has `had`. */
  const resized = (spec: object, had: object, conditions: object[] = [], generation = 2): Pod => {
    const pod = jobPod({ resources: spec, annotations: settings });
    const [status] = pod.status!.containerStatuses as Array<Record<string, unknown>>;
    return { ...pod, metadata: { ...pod.metadata, generation }, status: { ...pod.status, conditions, containerStatuses: [{ ...status, resources: had }] } };
  };

  test("a resize refused (PodResizePending Infeasible): the resources it ran with, the settings kept, the spec's ask beside them", () => {
    const asked = { limits: { cpu: "8", memory: "512Mi" }, requests: { cpu: "8", memory: "512Mi" } };
    const { annotations } = annotationsOf(resized(asked, admitted, [{ type: "PodResizePending", status: "True", reason: "Infeasible" }]));
    assert.equal(annotations.resources, JSON.stringify(admitted));
    assert.equal(annotations.resources_requested, JSON.stringify(asked));
    assert.equal(annotations.resize, "pending: Infeasible");
    assert.equal(annotations.settings, '{"container":"worker","cpu":1.5,"mem":536870912}');
  });

  test("a resize done mid-run: the final resources, the admission's settings dropped, and a marker that says so", () => {
    const grown = { limits: { cpu: "3", memory: "512Mi" }, requests: { cpu: "3", memory: "512Mi" } };
    const { annotations } = annotationsOf(resized(grown, grown));
    assert.equal(annotations.resources, JSON.stringify(grown));
    assert.equal(annotations.resize, "during the run: the resources are the final ones");
    assert.equal("settings" in annotations, false);
    assert.match(String(annotations.settings_dropped), /the settings say cpu 1\.5 for worker, its limit is 3/);
  });

  test("the same quantity written two ways is no resize", () => {
    const { annotations } = annotationsOf(resized({ limits: { cpu: "1.5", memory: "512Mi" } }, { limits: { cpu: "1500m", memory: "536870912" } }, [], 1));
    assert.equal("resize" in annotations, false);
  });

  test("pod-level resources (1.34+): the budget the pod ran under, beside the container's", () => {
    const pod = jobPod({ resources: undefined });
    const { annotations } = annotationsOf({ ...pod, spec: { ...pod.spec, resources: { limits: { cpu: "2", memory: "1Gi" }, requests: { cpu: "1" } } } });
    assert.equal(annotations.resources, "{}");
    assert.equal(annotations.pod_resources, '{"limits":{"cpu":"2","memory":"1Gi"},"requests":{"cpu":"1"}}');
  });
});

describe("a run cut short from outside is no performance sample: reported marked, without perf", () => {
  const measured = (pod: Pod) => {
    const assessment = assessPod(pod, criteria);
    assert.ok(assessment.kind === "report" && "annotations" in assessment.message.param);
    return { ...assessment.message.param, disrupted: assessment.disrupted };
  };
  const killed = (extra: { conditions?: object[]; reason?: string; deletionTimestamp?: string; grace?: number }, exitCode = 143): Pod => {
    const pod = jobPod({ exitCode, reason: "Error", startedAt: "2026-11-24T09:00:00Z", finishedAt: "2026-11-24T09:00:40Z" });
    return {
      ...pod,
      metadata: { ...pod.metadata, ...(extra.deletionTimestamp === undefined ? {} : { deletionTimestamp: extra.deletionTimestamp, deletionGracePeriodSeconds: extra.grace ?? 30 }) },
      status: { ...pod.status, phase: "Failed", ...(extra.conditions === undefined ? {} : { conditions: extra.conditions }), ...(extra.reason === undefined ? {} : { reason: extra.reason }) },
    };
  };

  test("preempted (DisruptionTarget PreemptionByScheduler): duration kept, no perf, the reason in the annotations", () => {
    const { metrics, annotations, disrupted } = measured(killed({ conditions: [{ type: "DisruptionTarget", status: "True", reason: "PreemptionByScheduler" }] }));
    assert.deepEqual(Object.keys(metrics), ["duration"]);
    assert.equal(annotations.disrupted, "PreemptionByScheduler");
    assert.equal(disrupted, "PreemptionByScheduler");
  });

  test("past the pod's activeDeadlineSeconds (reason DeadlineExceeded)", () => {
    assert.equal(measured(killed({ reason: "DeadlineExceeded" }, 137)).annotations.disrupted, "DeadlineExceeded");
  });

  test("killed by its Job (suspend, deadline, successPolicy, backoff limit): 143 after the deletion began", () => {
    // Deleted at 09:00:10 with 30 s grace (deletionTimestamp 09:00:40); it ended at 09:00:40.
    assert.equal(measured(killed({ deletionTimestamp: "2026-11-24T09:00:40Z", grace: 30 })).annotations.disrupted, "DeletedWhileRunning");
  });

  test("a job that failed on its own and was deleted later is an ordinary run", () => {
    const { metrics, annotations } = measured(killed({ deletionTimestamp: "2026-11-24T09:10:00Z", grace: 30 }));
    assert.ok("perf" in metrics && !("disrupted" in annotations));
  });

  test("an unknown disruption reason is counted as other, never as free text", () => {
    assert.equal(measured(killed({ conditions: [{ type: "DisruptionTarget", status: "True", reason: "SomethingNew\u001b[31m" }] })).annotations.disrupted, "other");
  });
});

describe("a job pod with a service mesh's proxy injected first", () => {
  for (const mesh of ["linkerd", "istio"] as const) {
    for (const as of ["container", "native-sidecar"] as const) {
      test(`${mesh}, as a ${as}: measured by its own container, as without the mesh`, () => {
        const assessment = assessPod(meshedJobPod(mesh, as), criteria);
        assert.equal(assessment.kind, "report", JSON.stringify(assessment));
        const plain = assessPod(jobPod(), criteria);
        assert.deepEqual(assessment.kind === "report" && assessment.message, plain.kind === "report" && plain.message);
      });
    }
  }
});
