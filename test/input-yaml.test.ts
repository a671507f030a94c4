// `invoke` and `admit` read YAML as kubectl does (YAML 1.1 through sigs.k8s.io/yaml, which is
// go-yaml v2 turned into JSON), so they decide about the pod the API server would get.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { readDocuments } from "../handler/edges/input-files.js";
import { readEventFile } from "../handler/measure/invoke.js";

const fromStdin = (text: string) => () => Readable.from([Buffer.from(text)]);
const read = async (text: string) => readDocuments("-", fromStdin(text));
const values = async (text: string) => {
  const result = await read(text);
  assert.ok("values" in result, JSON.stringify(result));
  return result.values;
};

describe("YAML as kubectl reads it", () => {
  test("merge keys (<<) are merged, the mapping's own keys first", async () => {
    assert.deepEqual(await values("base: &base {a: 1, b: 2}\nthing:\n  <<: *base\n  b: 3\n"), [{ base: { a: 1, b: 2 }, thing: { a: 1, b: 3 } }]);
  });

  test("on, off, yes, no, y and n are booleans, in every case kubectl knows", async () => {
    assert.deepEqual(await values("[on, On, ON, off, yes, Yes, YES, no, NO, y, Y, n, N, true, False]\n"), [[true, true, true, false, true, true, true, false, false, true, true, false, false, true, false]]);
  });

  test("on and yes as keys are the key \"true\"", async () => {
    assert.deepEqual(await values("on: 1\nno: 2\n"), [{ true: 1, false: 2 }]);
  });

  test("!!binary is its decoded text", async () => {
    assert.deepEqual(await values("value: !!binary aGVsbG8=\n"), [{ value: "hello" }]);
  });

  test("timestamps and colon-separated numbers stay text, as go-yaml v2 leaves them", async () => {
    assert.deepEqual(await values("date: 2026-12-07\nwhen: 2026-12-07T10:00:00Z\ntime: 1:30\n"), [{ date: "2026-12-07", when: "2026-12-07T10:00:00Z", time: "1:30" }]);
  });

  test("a leading zero is octal", async () => {
    assert.deepEqual(await values("mode: 0755\n"), [{ mode: 493 }]);
  });

  test("0o is octal too (Go's integer syntax, which go-yaml v2 reads numbers with)", async () => {
    assert.deepEqual(await values("mode: 0o755\nquoted: '0o755'\n"), [{ mode: 493, quoted: "0o755" }]);
  });

  test(".inf and .nan are refused: kubectl cannot send them as JSON", async () => {
    assert.deepEqual(await read("limit: .inf\n"), { problem: "(stdin): .inf or .nan at limit: kubectl cannot turn it into JSON, so no API server would get this object" });
  });

  test("!!set and !!omap are refused: they are not JSON", async () => {
    assert.deepEqual(await read("items: !!set {a, b}\n"), { problem: "(stdin): a !!set or !!omap at items: kubectl cannot turn it into JSON, so no API server would get this object" });
  });

  test("a Pod whose app id env var comes from a merge key is measured with that app id", async () => {
    const pod = `
kind: Pod
metadata: {name: merged, namespace: default, uid: u-merged}
spec:
  containers:
    - name: worker
      image: busybox
      env:
        - &jobid {name: JOBID, value: nightly}
status:
  phase: Succeeded
  containerStatuses:
    - name: worker
      state: {terminated: {exitCode: 0, startedAt: "2026-12-07T10:00:00Z", finishedAt: "2026-12-07T10:01:00Z"}}
`;
    const merged = pod.replace("- &jobid {name: JOBID, value: nightly}", "- <<: {name: JOBID, value: nightly}");
    const result = await readEventFile("-", fromStdin(merged));
    assert.ok("events" in result, JSON.stringify(result));
    const data = result.events[0]!.event.data as { spec: { containers: Array<{ env: unknown[] }> } };
    assert.deepEqual(data.spec.containers[0]!.env, [{ name: "JOBID", value: "nightly" }]);
  });
});
