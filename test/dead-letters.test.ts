// The dead-letter sink (`servo-k8s-multijob dead-letters`) as it runs: what reaches its log is
// bounded per request and escaped, and SIGTERM stops it cleanly whatever a client does.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import net from "node:net";
import { afterEach, describe, test } from "node:test";
import { createLogger } from "../handler/edges/log.js";
import { collect, startCli, type Run } from "./support/cli.js";
import { jobPod } from "./support/pods.js";
import { podEvent } from "./support/stack.js";

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const close of cleanup.splice(0)) close();
});

async function sink(env: Record<string, string> = {}): Promise<{ child: ChildProcess; done: Promise<Run>; url: string; port: number }> {
  const child = startCli(["dead-letters"], { PORT: "0", ...env });
  cleanup.push(() => child.kill("SIGKILL"));
  const done = collect(child);
  const port = await new Promise<number>((resolve, reject) => {
    let seen = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /"msg":"dead-letter sink listening","port":(\d+)/.exec(seen);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", () => reject(new Error(seen)));
  });
  return { child, done, url: `http://127.0.0.1:${port}/`, port };
}

const letterLines = (stderr: string) => stderr.split("\n").filter((line) => line.includes('"msg":"dead letter'));

// The raw characters a terminal or a log viewer would act on or hide; JSON.stringify leaves them as they are.
const HOSTILE = "a\u0085b\u009bc\u202ed\u2066e\u2028f\u2029g\u200fh";

describe("the log", () => {
  test("C1 controls, bidi overrides and line separators are written as \\u escapes, and read back the same", () => {
    const lines: string[] = [];
    createLogger("info", (line) => lines.push(line)).warn(`msg ${HOSTILE}`, { id: HOSTILE });
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0]!, /[\u0080-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f]/u);
    assert.match(lines[0]!, /a\\u0085b\\u009bc\\u202ed\\u2066e\\u2028f\\u2029g\\u200fh/);
    const record = JSON.parse(lines[0]!) as { msg: string; id: string };
    assert.deepEqual([record.msg, record.id], [`msg ${HOSTILE}`, HOSTILE]);
  });
});

describe("servo-k8s-multijob dead-letters", () => {
  test("a batch of 100 dead letters is logged as one line that counts them and names the first", async () => {
    const { child, done, url } = await sink();
    const batch = Array.from({ length: 100 }, (_, index) => podEvent(jobPod({ uid: `uid-dl-${index}`, name: `dl-${index}` })));
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/cloudevents-batch+json" }, body: JSON.stringify(batch) });
    assert.equal(response.status, 202);
    child.kill("SIGTERM");
    const lines = letterLines((await done).stderr);
    assert.equal(lines.length, 1, lines.join("\n"));
    const record = JSON.parse(lines[0]!) as { msg: string; letters: number; notCloudEvents: number; first: { pod: string } };
    assert.deepEqual([record.msg, record.letters, record.notCloudEvents, record.first.pod], ["dead letters (a batch)", 100, 0, "batch/dl-0"]);
  });

  test("a batch of items that are not CloudEvents is one line too", async () => {
    const { child, done, url } = await sink();
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/cloudevents-batch+json" }, body: JSON.stringify(Array.from({ length: 100 }, () => ({}))) });
    assert.equal(response.status, 202);
    child.kill("SIGTERM");
    const lines = letterLines((await done).stderr);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.deepEqual((({ letters, notCloudEvents }) => ({ letters, notCloudEvents }))(JSON.parse(lines[0]!)), { letters: 100, notCloudEvents: 100 });
  });

  test("a dead letter's text is written escaped, never raw", async () => {
    const { child, done, url } = await sink();
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({ specversion: "1.0", id: HOSTILE, source: HOSTILE, type: "t", knativeerrordest: HOSTILE }),
    });
    assert.equal(response.status, 202);
    child.kill("SIGTERM");
    const run = await done;
    assert.doesNotMatch(run.stderr, /[\u0080-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f]/u);
    const [line] = letterLines(run.stderr);
    assert.deepEqual((({ id, source, errorDest }) => ({ id, source, errorDest }))(JSON.parse(line!)), { id: HOSTILE, source: HOSTILE, errorDest: HOSTILE });
  });

  test("SIGTERM while a client trickles a body: the sink closes it and exits 0 within SHUTDOWN_TIMEOUT", async () => {
    const { child, done, port } = await sink({ SHUTDOWN_TIMEOUT: "2" });
    const socket = net.connect(port, "127.0.0.1");
    cleanup.push(() => socket.destroy());
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\nContent-Length: 100000\r\n\r\n{");
    const trickle = setInterval(() => socket.write(" "), 100);
    cleanup.push(() => clearInterval(trickle));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    child.kill("SIGTERM");
    const run = await done;
    assert.equal(run.code, 0, run.stderr);
    assert.ok(Date.now() - started < 2000 + 1500, `took ${Date.now() - started} ms`);
    assert.match(run.stderr, /"msg":"stopped"/);
  });
});
