// What the webhook's log says: a line for each admission that changed a pod or went wrong, and for
// the many job pods Optune left as they were, one info line a minute.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createLogger, type LogLevel } from "../handler/edges/log.js";
import { createAdmissionLog } from "../handler/adjust/admission-log.js";
import type { Admission } from "../handler/adjust/admit.js";

const setNothing: Admission = { result: "unchanged", reason: "Optune set nothing", pod: "batch/a", appId: "nightly", commands: ["MEASURE"] };
const adjusted: Admission = { result: "adjusted", reason: "Optune's settings applied", pod: "batch/b", appId: "nightly", commands: ["ADJUST", "MEASURE"], patch: [{ op: "add", path: "/x", value: 1 }] };
const refused: Admission = { result: "unchanged", reason: "ADJUST refused: cpu 99 above 4 (token s3cret)", pod: "batch/c", appId: "nightly", refused: true };
const failed: Admission = { result: "optune-error", reason: "Optune answered 503 to WHATS_NEXT", pod: "batch/d", appId: "nightly", warning: "optune: answered 503 to WHATS_NEXT; pod admitted unchanged" };
const skipped: Admission = { result: "skipped", reason: "not a job", pod: "batch/e" };

function setup(level: LogLevel = "info") {
  const lines: Array<Record<string, unknown>> = [];
  let clock = 0;
  const log = createAdmissionLog(createLogger(level, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)), (text) => text.replaceAll("s3cret", "[redacted]"), () => clock);
  return { log, lines, advance: (ms: number) => (clock += ms) };
}

describe("the webhook's log of admissions", () => {
  test("a pod changed, an ADJUST refused, Optune failing: one line each, at info, info and warn, redacted, without the patch", () => {
    const { log, lines } = setup();
    try {
      for (const admission of [adjusted, refused, failed]) log.record(admission, { uid: "u" });
      assert.deepEqual(lines.map((line) => [line.level, line.msg, line.result, line.pod]), [
        ["info", "pod admitted", "adjusted", "batch/b"],
        ["info", "pod admitted", "unchanged", "batch/c"],
        ["warn", "pod admitted", "optune-error", "batch/d"],
      ]);
      assert.equal(lines[1]?.reason, "ADJUST refused: cpu 99 above 4 (token [redacted])");
      assert.equal(lines[0]?.patch, undefined);
      assert.equal(lines[1]?.refused, undefined);
      assert.equal(lines[2]?.warning, "optune: answered 503 to WHATS_NEXT; pod admitted unchanged");
    } finally {
      log.close();
    }
  });

  test("job pods Optune set nothing for: no line each at info, one summary a minute; skipped pods are not counted", () => {
    const { log, lines, advance } = setup();
    try {
      for (let i = 0; i < 40; i++) log.record(setNothing, { uid: `u${i}` });
      log.record(skipped, { uid: "s" });
      log.record(adjusted, { uid: "a" });
      assert.deepEqual(lines.map((line) => line.result), ["adjusted"]);
      advance(60_000);
      log.flush();
      assert.equal(lines.length, 2);
      assert.equal(lines[1]?.level, "info");
      assert.equal(lines[1]?.msg, "40 job pods admitted unchanged in the last 60 s: Optune set nothing");
      assert.equal(lines[1]?.unchanged, 40);
      log.flush(); // the count starts over: nothing new, no line
      assert.equal(lines.length, 2);
      log.record(setNothing, {});
      advance(5000);
    } finally {
      log.close(); // at shutdown: what is pending
    }
    assert.equal(lines.at(-1)?.msg, "1 job pod admitted unchanged in the last 5 s: Optune set nothing");
  });

  test("at debug every admission has its line, and the summary still comes", () => {
    const { log, lines, advance } = setup("debug");
    try {
      log.record(setNothing, { uid: "u" });
      log.record(skipped, { uid: "s" });
      assert.deepEqual(lines.map((line) => [line.level, line.result]), [["debug", "unchanged"], ["debug", "skipped"]]);
      advance(1000);
    } finally {
      log.close();
    }
    assert.equal(lines.at(-1)?.msg, "1 job pod admitted unchanged in the last 1 s: Optune set nothing");
  });
});
