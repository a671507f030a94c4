import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Pod } from "../handler/jobs/pod.js";
import { finishedRun, jobContainerStatus, runDuration } from "../handler/measure/termination.js";
import { jobPod } from "./support/pods.js";

describe("is the job done, and how long did it run", () => {
  test("the job container's status is found by name, not by position", () => {
    const pod: Pod = {
      spec: { containers: [{ name: "worker" }, { name: "log-shipper" }] },
      status: {
        containerStatuses: [
          { name: "log-shipper", state: { running: {} } },
          { name: "worker", state: { terminated: { exitCode: 0, startedAt: "2026-11-24T09:41:04Z", finishedAt: "2026-11-24T09:43:04Z" } } },
        ],
      },
    };
    assert.equal(jobContainerStatus(pod)?.name, "worker");
    assert.deepEqual(runDuration(finishedRun(pod)!.terminated), { kind: "ran", seconds: 120 });
  });

  test("a terminated sidecar does not make the job done", () => {
    const pod: Pod = {
      spec: { containers: [{ name: "worker" }, { name: "log-shipper" }] },
      status: {
        containerStatuses: [
          { name: "log-shipper", state: { terminated: { exitCode: 1, startedAt: "2026-11-24T09:46:03Z", finishedAt: "2026-11-24T09:46:20Z" } } },
          { name: "worker", state: { running: {} } },
        ],
      },
    };
    assert.equal(finishedRun(pod), undefined);
  });

  test("only the current state counts, not lastState", () => {
    const pod = {
      spec: { containers: [{ name: "worker" }] },
      status: { containerStatuses: [{ name: "worker", state: { waiting: { reason: "ContainerCreating" } }, lastState: { terminated: { exitCode: 137 } } }] },
    } as unknown as Pod;
    assert.equal(finishedRun(pod), undefined);
  });

  test("no status, no containerStatuses, or odd shapes: not done", () => {
    for (const pod of [
      { spec: { containers: [{ name: "worker" }] } },
      { spec: { containers: [{ name: "worker" }] }, status: { phase: "Pending" } },
      { spec: { containers: [{ name: "worker" }] }, status: { containerStatuses: "nope" } },
      { spec: { containers: "nope" }, status: { containerStatuses: [] } },
      { spec: { containers: [] }, status: { containerStatuses: [] } },
      { spec: { containers: [{ name: "worker" }] }, status: { containerStatuses: [null, { name: "worker", state: { terminated: "x" } }] } },
    ]) {
      assert.equal(finishedRun(pod as Pod), undefined, JSON.stringify(pod));
    }
  });

  test("duration is finishedAt - startedAt in whole seconds", () => {
    assert.deepEqual(runDuration({ startedAt: "2026-11-24T09:01:04Z", finishedAt: "2026-11-24T09:31:04Z" }), { kind: "ran", seconds: 1800 });
  });

  test("startedAt equal to finishedAt is a 0 s run", () => {
    assert.deepEqual(runDuration({ startedAt: "2026-11-24T09:01:04Z", finishedAt: "2026-11-24T09:01:04Z" }), { kind: "ran", seconds: 0 });
  });

  test("null or absent timestamps mean the job never ran", () => {
    assert.deepEqual(runDuration({ exitCode: 137, reason: "ContainerStatusUnknown", startedAt: null, finishedAt: null }), { kind: "never-ran" });
    assert.deepEqual(runDuration({ startedAt: "2026-11-24T09:01:04Z" }), { kind: "never-ran" });
    assert.deepEqual(runDuration({ finishedAt: "2026-11-24T09:01:04Z" }), { kind: "never-ran" });
  });

  test("unreadable or reversed timestamps are invalid, with a reason", () => {
    const unreadable = runDuration({ startedAt: "yesterday", finishedAt: "2026-11-24T09:01:04Z" });
    assert.equal(unreadable.kind, "invalid");
    assert.match((unreadable as { reason: string }).reason, /unreadable startedAt\/finishedAt/);
    const reversed = runDuration({ startedAt: "2026-11-24T09:01:04Z", finishedAt: "2026-11-24T09:00:04Z" });
    assert.deepEqual(reversed, { kind: "invalid", reason: "finishedAt 2026-11-24T09:00:04Z is before startedAt 2026-11-24T09:01:04Z" });
  });

  test("the test pod builder makes a 42 s run", () => {
    assert.deepEqual(runDuration(finishedRun(jobPod())!.terminated), { kind: "ran", seconds: 42 });
  });
});

describe("container restart rules (Kubernetes 1.35+, on by default): a terminated state is final only if no rule restarts it", () => {
  /** A pod with restartPolicy Never whose job container restarts in place on exit 42. */
  const withRule = (state: object, extra: object = {}): Pod => {
    const pod = jobPod();
    return {
      ...pod,
      spec: { restartPolicy: "Never", containers: [{ ...(pod.spec!.containers as object[])[0]!, restartPolicy: "Never", restartPolicyRules: [{ action: "Restart", exitCodes: { operator: "In", values: [42] } }] }] },
      status: { phase: "Running", containerStatuses: [{ name: "worker", ...state, ...extra }] },
    };
  };
  const terminated = (exitCode: number, startedAt = "2026-11-24T09:00:00Z", finishedAt = "2026-11-24T09:01:04Z") => ({ terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", startedAt, finishedAt } });

  test("exit 42, which a rule restarts in place: not done (the first attempt is not the job's result)", () => {
    assert.equal(finishedRun(withRule({ state: terminated(42), restartCount: 0 })), undefined);
  });

  test("restarting after exit 42: still not done, lastState is not a result", () => {
    assert.equal(finishedRun(withRule({ state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: terminated(42), restartCount: 1 })), undefined);
  });

  test("the run after the restart exits 0: that run is the result, with the restart counted", () => {
    const run = finishedRun(withRule({ state: terminated(0, "2026-11-24T09:01:10Z", "2026-11-24T09:05:21Z"), restartCount: 1 }));
    assert.deepEqual(run, { terminated: terminated(0, "2026-11-24T09:01:10Z", "2026-11-24T09:05:21Z").terminated, restarts: 1 });
  });

  test("an exit no rule matches falls to the container's restartPolicy: Never, so exit 1 is final", () => {
    assert.deepEqual(finishedRun(withRule({ state: terminated(1), restartCount: 0 }))?.terminated.exitCode, 1);
  });

  test("a rule restarting every exit NotIn [0]: exit 3 restarts, exit 0 is final", () => {
    const notIn = (state: object): Pod => {
      const pod = withRule(state);
      const container = { ...(pod.spec!.containers as Array<Record<string, unknown>>)[0]!, restartPolicyRules: [{ action: "Restart", exitCodes: { operator: "NotIn", values: [0] } }] };
      return { ...pod, spec: { ...pod.spec, containers: [container] } };
    };
    assert.equal(finishedRun(notIn({ state: terminated(3), restartCount: 0 })), undefined);
    assert.equal(finishedRun(notIn({ state: terminated(0), restartCount: 2 }))?.restarts, 2);
  });

  test("a container restartPolicy OnFailure in a Never pod: a failure waits for the pod to end; then it is the result", () => {
    const onFailure = (phase: string): Pod => {
      const pod = jobPod({ exitCode: 1, reason: "Error" });
      return { ...pod, spec: { restartPolicy: "Never", containers: [{ ...(pod.spec!.containers as object[])[0]!, restartPolicy: "OnFailure" }] }, status: { ...pod.status, phase } };
    };
    assert.equal(finishedRun(onFailure("Running")), undefined);
    assert.equal(finishedRun(onFailure("Failed"))?.terminated.exitCode, 1);
  });

  test("a pod restartPolicy OnFailure that exits 0 is final at once: nothing restarts a success", () => {
    const pod = jobPod();
    assert.equal(finishedRun({ ...pod, spec: { ...pod.spec, restartPolicy: "OnFailure" }, status: { ...pod.status, phase: "Running" } })?.terminated.exitCode, 0);
  });
});
