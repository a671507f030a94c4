// The command line, run as a separate process exactly as a user runs it.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startReceiver, type Receiver } from "../handler/optune-receiver.js";
import { jobPod } from "./support/pods.js";
import { collect, listening, runCli, startCli } from "./support/cli.js";
import { podEvent } from "./support/stack.js";

const SUCCEEDED = "example/events/01-succeeded-job.json";
const SUCCEEDED_LINE =
  '{"url":"https://us-central1-optune-saas-collect.cloudfunctions.net/metrics/acme.example.com/nightly-thumbnails/servo",' +
  '"message":{"event":"MEASUREMENT","param":{"metrics":{"duration":{"value":95,"unit":"s"},"perf":{"value":0.010526315789473684,"unit":"1/s"},' +
  '"est_duration":{"value":120,"unit":"s"}},"annotations":{"resources":"{\\"limits\\":{\\"cpu\\":\\"1\\",\\"memory\\":\\"512Mi\\"},' +
  '\\"requests\\":{\\"cpu\\":\\"500m\\",\\"memory\\":\\"256Mi\\"}}","exitcode":0,"reason":"Completed","pod":"default/nightly-thumbnails-x7k2p",' +
  '"uid":"30cbc97d-0fef-4928-a683-6886a260cd0b"}}}}\n';

const scratch = mkdtempSync(join(tmpdir(), "servo-cli-"));
function file(name: string, content: unknown): string {
  const path = join(scratch, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

describe("servo-k8s-multijob invoke", () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
  });
  after(() => receiver.close());

  test("--dry-run on the example succeeded job prints the exact MEASUREMENT line", async () => {
    const run = await runCli(["invoke", "--dry-run", SUCCEEDED], { OPTUNE_ACCOUNT: "acme.example.com" });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, SUCCEEDED_LINE);
    assert.equal(run.stderr, `${SUCCEEDED}: printed, not sent (dry run): default/nightly-thumbnails-x7k2p (app nightly-thumbnails, ran 95 s, exit code 0)\n`);
  });

  test("every example event: one line per message, one outcome per event", async () => {
    const run = await runCli(["invoke", "--dry-run", ...["01-succeeded-job", "02-failed-job", "03-oomkilled-job", "04-never-ran-job", "05-running-job", "06-not-a-job"].map((name) => `example/events/${name}.json`)]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim().split("\n").length, 4);
    assert.deepEqual(
      run.stderr.trim().split("\n").map((line) => line.split(": ")[1]),
      ["printed, not sent (dry run)", "printed, not sent (dry run)", "printed, not sent (dry run)", "printed, not sent (dry run)", "ignored", "ignored"],
    );
  });

  test("without --dry-run, sends to OPTUNE_URL and prints what it sent", async () => {
    receiver.requests.length = 0;
    const run = await runCli(["invoke", SUCCEEDED], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme.example.com", OPTUNE_AUTH_TOKEN: "t" });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, SUCCEEDED_LINE.replace("https://us-central1-optune-saas-collect.cloudfunctions.net", receiver.url));
    assert.match(run.stderr, /: sent: default\/nightly-thumbnails-x7k2p/);
    assert.equal(receiver.requests.length, 1);
    assert.equal(receiver.requests[0]?.headers.authorization, "Bearer t");
  });

  test("a bare Pod is taken as an update; an array file holds several events", async () => {
    const pod = jobPod({ namespace: "default", uid: "bare" });
    const run = await runCli(["invoke", "--dry-run", file("pod.json", pod), file("events.json", [podEvent(jobPod({ namespace: "default", uid: "in-array" }))])]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim().split("\n").length, 2);
  });

  test("odd pods after a good one: the good one is sent, the odd ones ignored, no crash", async () => {
    receiver.requests.length = 0;
    let deep = '"x"';
    for (let i = 0; i < 6000; i++) deep = `[${deep}]`;
    const odd = JSON.stringify(jobPod({ namespace: "default", uid: "deep", resources: { limits: "@DEEP@" } })).replace('"@DEEP@"', deep);
    const run = await runCli(
      ["invoke", SUCCEEDED, file("name-object.json", { ...jobPod({ namespace: "default" }), metadata: { name: { toString: 1 }, namespace: ["default"] } }), file("deep.json", odd), file("surrogate.json", jobPod({ namespace: "default", jobId: "\ud800" }))],
      { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme" },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /\bat \w+ \(/, "no stack trace");
    assert.deepEqual(run.stderr.trim().split("\n").map((line) => line.split(": ")[1]), ["sent", "ignored", "sent", "ignored"]);
    assert.equal(receiver.requests.filter((request) => (request.body as { event: string }).event === "MEASUREMENT").length, 2);
  });

  test("a failed delivery exits 1 and says so", async () => {
    receiver.respond = () => ({ status: 503, body: "{}" });
    const run = await runCli(["invoke", SUCCEEDED], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme", OPTUNE_SEND_DEADLINE: "0.2" });
    receiver.respond = () => ({ status: 200, body: "{}" });
    assert.equal(run.code, 1);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /01-succeeded-job.json: FAILED: default\/nightly-thumbnails-x7k2p \(app nightly-thumbnails\): Optune answered 503/);
  });

  test("bad input: exit 2, each problem named with its file, and nothing is sent even for the good files", async () => {
    receiver.requests.length = 0;
    const notJson = file("broken.json", '{"specversion":');
    const notEvent = file("thing.json", { hello: "world" });
    const noType = file("no-type.json", { specversion: "1.0", id: "1", source: "s" });
    const notPodData = file("no-pod.json", { ...podEvent(jobPod()), data: "pod" });
    const run = await runCli(["invoke", SUCCEEDED, notJson, notEvent, noType, notPodData, join(scratch, "missing.json")], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "a" });
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    assert.equal(receiver.requests.length, 0);
    const lines = run.stderr.trim().split("\n");
    assert.match(lines[0]!, /broken\.json: not valid JSON: /);
    assert.match(lines[1]!, /thing\.json: neither a CloudEvent \(no "specversion"\) nor a Pod \(no "kind": "Pod"\)/);
    assert.match(lines[2]!, /no-type\.json: missing required CloudEvent attribute "type"/);
    assert.match(lines[3]!, /no-pod\.json: the data of a dev\.knative\.apiserver\.resource\.update event must be a JSON object/);
    assert.match(lines[4]!, /missing\.json: cannot read: ENOENT/);
  });

  test("no file: usage, exit 2", async () => {
    const run = await runCli(["invoke"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /invoke needs at least one FILE/);
  });
});

describe("configuration errors", () => {
  test("an invalid value stops the process with one line naming the variable", async () => {
    for (const command of [["invoke", SUCCEEDED], ["serve"]]) {
      const run = await runCli(command, { OPTUNE_SEND_TIMEOUT: "ten" });
      assert.equal(run.code, 2);
      assert.equal(run.stderr, 'servo-k8s-multijob: invalid configuration: OPTUNE_SEND_TIMEOUT must be a number of seconds, e.g. 10 or 2.5, got "ten"\n');
    }
  });

  test("an unknown command: usage, exit 2", async () => {
    const run = await runCli(["serv"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown command "serv"\nusage:/);
  });
});

describe("servo-k8s-multijob serve", () => {
  for (const [signal, number] of [["SIGTERM", 15], ["SIGINT", 2]] as const) {
    test(`serves events; on ${signal} says GOODBYE with "signal ${number}" and exits 0`, async () => {
      const receiver = await startReceiver();
      const child = startCli(["serve"], { PORT: "0", OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme", POD_NAMESPACES: "batch" });
      const done = collect(child);
      const port = await listening(child);
      const response = await fetch(`http://127.0.0.1:${port}/`, {
        method: "POST",
        headers: { "content-type": "application/cloudevents+json" },
        body: JSON.stringify(podEvent(jobPod())),
      });
      assert.equal(response.status, 200);
      child.kill(signal);
      const run = await done;
      await receiver.close();
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        receiver.requests.map((request) => request.body),
        [
          { event: "HELLO", param: { account: "acme" } },
          receiver.requests[1]?.body,
          { event: "GOODBYE", param: { account: "acme", reason: `signal ${number}` } },
        ],
      );
      assert.equal((receiver.requests[1]?.body as { event: string }).event, "MEASUREMENT");
    });
  }
});

describe("npm run demo", () => {
  test("replays the examples through HTTP and shows what the receiver got", async () => {
    const run = await runCli(["demo"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Replayed 6 events in binary mode/);
    assert.match(run.stdout, /The receiver got 4 MEASUREMENTs:/);
    assert.match(run.stdout, /default\/nightly-thumbnails-x7k2p\s+nightly-thumbnails\s+95 s\s+0/);
    assert.match(run.stdout, /default\/train-model-b5t8w\s+train-model\s+605 s\s+137/);
    assert.match(run.stdout, /Lifecycle messages to app _global_: HELLO, GOODBYE \(signal 15\)/);
  });
});
