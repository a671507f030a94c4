import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { assessPod as assessLazily } from "../handler/measure/assess.js";
import { parseAppIdPath } from "../handler/jobs/app-id.js";
import { estDuration } from "../handler/measure/measurement.js";
import type { Pod } from "../handler/jobs/pod.js";
import { jobPod } from "./support/pods.js";

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
