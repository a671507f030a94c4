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
