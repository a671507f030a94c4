// What the log says: a misconfiguration (no JOBID, a namespace not watched) is visible at info
// without a line per event.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Outcome } from "../handler/measure/handle.js";
import { createLogger } from "../handler/edges/log.js";
import { createOutcomeLog } from "../handler/measure/outcome-log.js";
import { jobPod } from "./support/pods.js";
import { podEvent, startStack } from "./support/stack.js";

const noAppId: Outcome = { kind: "ignored", code: "no-app-id", reason: "no app id at spec/containers/0/env/[JOBID]", pod: "batch/a" };
const notWatched: Outcome = { kind: "ignored", code: "not-watched", reason: "namespace web is not watched", pod: "web/b" };

describe("the summary of ignored events", () => {
  function setup() {
    const lines: Array<Record<string, unknown>> = [];
    let clock = 0;
    const outcomes = createOutcomeLog(createLogger("info", (line) => lines.push(JSON.parse(line) as Record<string, unknown>)), "spec/containers/0/env/[JOBID]", () => clock);
    return { outcomes, lines, advance: (ms: number) => (clock += ms) };
  }

  test("one info line sums them up by reason, most frequent first; no line per ignored event", () => {
    const { outcomes, lines, advance } = setup();
    try {
      for (let i = 0; i < 1100; i++) outcomes.record(noAppId, {});
      for (let i = 0; i < 104; i++) outcomes.record(notWatched, {});
      assert.equal(lines.length, 0);
      advance(60_000);
      outcomes.flush();
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.level, "info");
      assert.equal(lines[0]?.msg, "1,204 ignored in the last 60 s: 1,100 no app id at spec/containers/0/env/[JOBID], 104 namespace not watched");
      assert.deepEqual(lines[0]?.ignored, { "no-app-id": 1100, "not-watched": 104 });
    } finally {
      outcomes.close();
    }
  });

  test("the summary calls reported only what Optune has: a claim held elsewhere is counted by its own words", () => {
    const { outcomes, lines, advance } = setup();
    try {
      outcomes.record({ kind: "already-reported", pod: "batch/a", appId: "x", reason: "already reported (the pod's claim says sent)" }, {});
      outcomes.record({ kind: "ignored", code: "claimed-elsewhere", reason: "being reported by servo-b", pod: "batch/b" }, {});
      outcomes.record({ kind: "ignored", code: "foreign-claim", reason: "not ours", pod: "batch/c" }, {});
      advance(60_000);
      outcomes.flush();
      assert.equal(lines[0]?.msg, "3 ignored in the last 60 s: 1 already reported, 1 being reported by another instance, 1 claim annotations not written by us");
    } finally {
      outcomes.close();
    }
  });

  test("nothing ignored, nothing written; the count starts over after each line", () => {
    const { outcomes, lines, advance } = setup();
    outcomes.flush();
    assert.equal(lines.length, 0);
    outcomes.record(noAppId, {});
    advance(5000);
    outcomes.close(); // at shutdown: what is pending
    assert.equal(lines.at(-1)?.msg, "1 ignored in the last 5 s: 1 no app id at spec/containers/0/env/[JOBID]");
    outcomes.flush();
    assert.equal(lines.length, 1);
  });

  test("events about jobs still get their own line", () => {
    const { outcomes, lines } = setup();
    outcomes.record({ kind: "sent", pod: "batch/a", appId: "app", runSeconds: 3 }, { ceId: "1" });
    outcomes.close();
    assert.deepEqual(lines.map((line) => [line.level, line.outcome, line.ceId]), [["info", "sent", "1"]]);
  });

  test("the function writes the summary when it stops", async () => {
    const stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", LOG_LEVEL: "info" });
    await stack.send(podEvent(jobPod({ jobId: null })));
    await stack.send(podEvent(jobPod({ namespace: "web" })));
    await stack.send(podEvent(jobPod({ jobId: null, uid: "other" })));
    await stack.close();
    const summary = stack.logs.find((line) => typeof line.msg === "string" && line.msg.includes(" ignored in the last "));
    assert.match(String(summary?.msg), /^3 ignored in the last \d+ s: 2 no app id at spec\/containers\/0\/env\/\[JOBID\], 1 namespace not watched$/);
  });
});
