// The command line, run as a separate process exactly as a user runs it.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { findPrometheus } from "../handler/demo/cadvisor-stand-in.js";
import { startReceiver, type Receiver } from "../handler/demo/optune-stand-in.js";
import { jobPod } from "./support/pods.js";
import { collect, listening, REPOSITORY, runCli, startCli } from "./support/cli.js";
import { startFakeApiServer } from "./support/fake-apiserver.js";
import { podAnnotation } from "../handler/jobs/pod.js";
import { podEvent, startStack } from "./support/stack.js";
import { admissionReview, atCreate, makeCertificate } from "./support/admission.js";
import { scratchDir } from "./support/scratch.js";

const SUCCEEDED = "example/events/01-succeeded-job.json";
const SUCCEEDED_LINE =
  '{"url":"https://us-central1-optune-saas-collect.cloudfunctions.net/metrics/acme.example.com/nightly-thumbnails/servo",' +
  '"message":{"event":"MEASUREMENT","param":{"metrics":{"duration":{"value":95,"unit":"s"},"perf":{"value":0.010526315789473684,"unit":"1/s"},' +
  '"est_duration":{"value":120,"unit":"s"}},"annotations":{"resources":"{\\"limits\\":{\\"cpu\\":\\"1\\",\\"memory\\":\\"512Mi\\"},' +
  '\\"requests\\":{\\"cpu\\":\\"500m\\",\\"memory\\":\\"256Mi\\"}}","exitcode":0,"reason":"Completed","pod":"default/nightly-thumbnails-x7k2p",' +
  '"uid":"30cbc97d-0fef-4928-a683-6886a260cd0b"}}}}\n';

const scratch = scratchDir("servo-cli-");
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

  test("without --send nothing is sent, even with an account in the environment", async () => {
    receiver.requests.length = 0;
    const run = await runCli(["invoke", SUCCEEDED], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme.example.com" });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, SUCCEEDED_LINE.replace("https://us-central1-optune-saas-collect.cloudfunctions.net", receiver.url));
    assert.match(run.stderr, /: printed, not sent \(dry run\): default\/nightly-thumbnails-x7k2p/);
    assert.equal(receiver.requests.length, 0);
  });

  test("--send delivers to OPTUNE_URL and prints what it sent", async () => {
    receiver.requests.length = 0;
    const run = await runCli(["invoke", "--send", SUCCEEDED], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme.example.com", OPTUNE_AUTH_TOKEN: "t" });
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
      ["invoke", "--send", SUCCEEDED, file("name-object.json", { ...jobPod({ namespace: "default" }), metadata: { name: { toString: 1 }, namespace: ["default"] } }), file("deep.json", odd), file("surrogate.json", jobPod({ namespace: "default", jobId: "\ud800" }))],
      { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme" },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /\bat \w+ \(/, "no stack trace");
    assert.deepEqual(run.stderr.trim().split("\n").map((line) => line.split(": ")[1]), ["sent", "ignored", "sent", "ignored"]);
    assert.equal(receiver.requests.filter((request) => (request.body as { event: string }).event === "MEASUREMENT").length, 2);
  });

  test("a failed delivery exits 1 and says so", async () => {
    receiver.respond = () => ({ status: 503, body: "{}" });
    const run = await runCli(["invoke", "--send", SUCCEEDED], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme", OPTUNE_SEND_DEADLINE: "0.2" });
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
    const run = await runCli(["invoke", "--send", SUCCEEDED, notJson, notEvent, noType, notPodData, join(scratch, "missing.json")], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "a" });
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    assert.equal(receiver.requests.length, 0);
    const lines = run.stderr.trim().split("\n");
    assert.match(lines[0]!, /broken\.json: neither JSON nor YAML: /);
    assert.match(lines[1]!, /thing\.json: neither a CloudEvent \(no "specversion"\) nor a Pod or a List of Pods/);
    assert.match(lines[2]!, /no-type\.json: missing required CloudEvent attribute "type"/);
    assert.match(lines[3]!, /no-pod\.json: the data of a dev\.knative\.apiserver\.resource\.update event must be a JSON object/);
    assert.match(lines[4]!, /missing\.json: cannot read: ENOENT/);
  });

  test("no file: usage, exit 2", async () => {
    const run = await runCli(["invoke"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /invoke needs at least one FILE/);
  });

  test("kubectl's output: a List of Pods as JSON, YAML, and - for stdin", async () => {
    const pods = [jobPod({ namespace: "default", uid: "l1", name: "l1" }), jobPod({ namespace: "default", uid: "l2", name: "l2", running: true })];
    const list = { apiVersion: "v1", kind: "List", items: pods, metadata: { resourceVersion: "" } };
    const { stringify } = await import("yaml");
    const json = await runCli(["invoke", file("list.json", list)]);
    const yaml = await runCli(["invoke", file("list.yaml", stringify(list))]);
    const podYaml = await runCli(["invoke", file("pod.yaml", stringify(pods[0]))]);
    for (const run of [json, yaml]) {
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.stderr.trim().split("\n").map((line) => line.split(": ")[1]), ["printed, not sent (dry run)", "ignored"]);
    }
    assert.equal(podYaml.code, 0, podYaml.stderr);
    const child = startCli(["invoke", "-"], {});
    child.stdin?.end(JSON.stringify(pods[0]));
    const stdin = await collect(child);
    assert.equal(stdin.code, 0, stdin.stderr);
    assert.match(stdin.stderr, /^\(stdin\): printed, not sent \(dry run\): default\/l1/);
  });

  test("the cluster of your kubeconfig is used only with --cluster", async () => {
    const api = await startFakeApiServer();
    try {
      const pod = api.create(jobPod({ namespace: "default", uid: "uid-cluster", name: "in-cluster" }));
      const podFile = file("cluster-pod.json", pod);
      const env = { KUBECONFIG: api.kubeconfig, OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme" };
      assert.equal((await runCli(["invoke", "--send", podFile], env)).code, 0);
      assert.equal(api.requests.length, 0, "no call to the cluster without --cluster");
      receiver.requests.length = 0;
      const claimed = await runCli(["invoke", "--send", "--cluster", podFile], env);
      assert.equal(claimed.code, 0, claimed.stderr);
      assert.deepEqual(api.requests.map((request) => `${request.verb} ${request.status}`), ["patch 200", "patch 200"]);
      assert.match(podAnnotation(api.get("default", "in-cluster")!, "optune.ai/measurement") ?? "", /"state":"sent"/);
    } finally {
      await api.close();
    }
  });

  test("--to URL sends the events to a running function in binary mode and prints its answers", async () => {
    const stack = await startStack({ POD_NAMESPACES: "default", OPTUNE_ACCOUNT: "acme", LOG_LEVEL: "error" });
    try {
      const run = await runCli(["invoke", "--to", stack.fn.url, SUCCEEDED, "example/events/06-not-a-job.json"]);
      assert.equal(run.code, 0, run.stderr);
      const answers = run.stdout.trim().split("\n").map((line) => JSON.parse(line) as { outcome: string });
      assert.deepEqual(answers.map((answer) => answer.outcome), ["sent", "ignored"]);
      assert.match(run.stderr, /01-succeeded-job\.json: HTTP 200\n/);
      assert.equal(stack.measurements().length, 1);
      assert.equal(stack.measurements()[0]?.headers["idempotency-key"], "30cbc97d-0fef-4928-a683-6886a260cd0b");
      const refused = await runCli(["invoke", "--to", stack.fn.url, "--send", SUCCEEDED]);
      assert.equal(refused.code, 2);
    } finally {
      await stack.close();
    }
  });
});

describe("--help and --version", () => {
  for (const command of ["serve", "webhook", "dead-letters", "invoke", "admit", "sweep", "manifests", "demo"]) {
    test(`${command} --help: its usage, exit 0`, async () => {
      const run = await runCli([command, "--help"]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`^usage: servo-k8s-multijob ${command}`));
    });
  }

  test("every Example: line of every --help runs as shown (its own part of a pipe), exit 0", async () => {
    const examples: string[] = [];
    for (const command of ["serve", "webhook", "dead-letters", "invoke", "admit", "sweep", "manifests", "check", "demo"]) {
      examples.push(...[...(await runCli([command, "--help"])).stdout.matchAll(/^Example: servo-k8s-multijob (.*?)(?: \| .*)?$/gm)].map((match) => match[1]!));
    }
    assert.ok(examples.length >= 3, examples.join("\n"));
    for (const example of examples) {
      const run = await runCli(example.split(" "));
      assert.equal(run.code, 0, `${example}\n${run.stderr}`);
      if (example.startsWith("admit --adjust")) assert.match(run.stderr, /adjusted/, `${example}: Optune's sample ADJUST is applied, not refused\n${run.stderr}`);
    }
  });

  test("admit --help shows each form of quantity it names in an example that works", async () => {
    const help = (await runCli(["admit", "--help"])).stdout;
    for (const form of ["cpu=1.5", "cpu=1500m", "mem=512Mi", "mem=1Gi", "mem=536870912"]) assert.match(help, new RegExp(`^Example: servo-k8s-multijob admit --adjust \\S*${form}\\b`, "m"), form);
  });

  test("--help lists every command; --version prints the package's", async () => {
    const help = await runCli(["--help"]);
    assert.equal(help.code, 0);
    for (const command of ["serve", "webhook", "dead-letters", "invoke", "admit", "sweep", "manifests", "demo"]) assert.match(help.stdout, new RegExp(`servo-k8s-multijob ${command}`));
    const version = await runCli(["--version"]);
    assert.equal(version.stdout, `servo-k8s-multijob ${JSON.parse(readFileSync(join(REPOSITORY, "package.json"), "utf8")).version}\n`);
  });

  test("an unknown flag is a usage error naming the command", async () => {
    const run = await runCli(["invoke", "--frobnicate", SUCCEEDED]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^servo-k8s-multijob invoke: Unknown option '--frobnicate'/);
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
      // HELLO waits until the first event is answered (a cold start answers what woke it first).
      assert.deepEqual(
        receiver.requests.map((request) => request.body),
        [
          receiver.requests[0]?.body,
          { event: "HELLO", param: { account: "acme" } },
          { event: "GOODBYE", param: { account: "acme", reason: `signal ${number}` } },
        ],
      );
      assert.equal((receiver.requests[0]?.body as { event: string }).event, "MEASUREMENT");
    });
  }
});

describe("warnings at start", () => {
  test("serve logs a misspelt OPTUNE_ variable and an account without a token, one warning line each", async () => {
    const child = startCli(["serve"], { PORT: "0", OPTUNE_ACCOUNT: "acme", OPTUNE_ACOUNT: "acme" });
    const done = collect(child);
    await listening(child);
    child.kill("SIGTERM");
    const warnings = (await done).stderr.split("\n").filter((line) => line.includes('"level":"warn"') && line.includes("is set, but"));
    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.match(warnings[0]!, /"msg":"OPTUNE_ACOUNT is set, but servo-k8s-multijob reads no such variable: did you mean OPTUNE_ACCOUNT\?"/);
    assert.match(warnings[1]!, /"msg":"OPTUNE_ACCOUNT is set, but no token is/);
  });

  test("invoke says it on stderr, before what it did", async () => {
    const run = await runCli(["invoke", SUCCEEDED], { OPTUNE_ACOUNT: "acme" });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^servo-k8s-multijob invoke: warning: OPTUNE_ACOUNT is set, but servo-k8s-multijob reads no such variable: did you mean OPTUNE_ACCOUNT\?\n/);
  });
});

describe("invoke on what kubectl prints, and what it says it did", () => {
  test("pods left out by POD_NAMESPACES: which namespaces they were in and how to watch them", async () => {
    const list = { apiVersion: "v1", kind: "List", items: [jobPod({ namespace: "batch" }), jobPod({ namespace: "batch", name: "b2" }), jobPod({ namespace: "etl", name: "e1" })] };
    const run = await runCli(["invoke", file("pods.json", list)]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^3 pods were left out because their namespaces are not watched: batch \(2\), etl \(1\)\. POD_NAMESPACES is default; to measure them: POD_NAMESPACES=default,batch,etl servo-k8s-multijob invoke \.\.\.$/m);
    const watched = await runCli(["invoke", file("pods.json", list)], { POD_NAMESPACES: "batch,etl" });
    assert.doesNotMatch(watched.stderr, /left out/);
  });

  test("--send without OPTUNE_ACCOUNT or OPTUNE_URL: one line saying why nothing can be sent, exit 2, nothing printed as sent", async () => {
    const run = await runCli(["invoke", "--send", SUCCEEDED]);
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.stdout, "");
    assert.equal(run.stderr, "servo-k8s-multijob invoke: --send, but neither OPTUNE_ACCOUNT nor OPTUNE_URL is set: there is nowhere to send to; set OPTUNE_ACCOUNT (and OPTUNE_AUTH_TOKEN), or leave out --send for a dry run\n");
  });

  test("--cluster without --send says it is a dry run that makes no cluster request", async () => {
    const run = await runCli(["invoke", "--cluster", SUCCEEDED]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^servo-k8s-multijob invoke: a dry run \(no --send\): --cluster makes no cluster request/);
  });
});

describe("servo-k8s-multijob admit", () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver((request) => {
      const event = (request.body as { event?: string }).event;
      if (event !== "WHATS_NEXT") return { status: 200, body: "{}" };
      // ADJUST on the first question for each pod, MEASURE after it.
      const asked = receiver.requests.filter((seen) => (seen.body as { event?: string }).event === "WHATS_NEXT").length;
      return { status: 200, body: JSON.stringify(asked % 2 === 0 ? { cmd: "ADJUST", param: { state: { application: { components: { worker: { settings: { cpu: { value: 1 } } } } } } } } : { cmd: "MEASURE" }) };
    });
  });
  after(() => receiver.close());

  test("a bare Pod and an AdmissionReview: one JSON line per file with the settings and the patch", async () => {
    receiver.requests.length = 0;
    const pod = atCreate(jobPod());
    const run = await runCli(["admit", file("new-pod.json", pod), file("review.json", admissionReview(pod))], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme", POD_NAMESPACES: "batch" });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split("\n").map((line) => JSON.parse(line) as { file: string; result: string; settings: unknown; patch: unknown[] });
    assert.equal(lines.length, 2);
    for (const line of lines) {
      assert.equal(line.result, "adjusted");
      assert.deepEqual(line.settings, [{ container: "worker", cpu: 1 }]);
      assert.ok(line.patch.length >= 2);
    }
  });

  test("--dry-run prints the Optune messages instead of sending them, and takes WHATS_NEXT as MEASURE", async () => {
    receiver.requests.length = 0;
    const run = await runCli(["admit", "--dry-run", file("dry-pod.json", atCreate(jobPod()))], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme", POD_NAMESPACES: "batch" });
    assert.equal(run.code, 0, run.stderr);
    const [message, admission] = run.stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(message, { url: `${receiver.url}/metrics/acme/resize-images/servo`, message: { event: "WHATS_NEXT", param: null } });
    assert.equal(admission?.result, "unchanged");
    assert.equal(receiver.requests.length, 0);
  });

  test("bad input: exit 2 and nothing asked", async () => {
    receiver.requests.length = 0;
    const run = await runCli(["admit", file("good.json", atCreate(jobPod())), file("not-a-review.json", { hello: "world" })], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme", POD_NAMESPACES: "batch" });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /not-a-review.json: neither a Pod nor an AdmissionReview/);
    assert.equal(receiver.requests.length, 0);
  });

  test("--adjust: a dry run with a sample ADJUST shows the whole conversation, the patch and the resources before and after", async () => {
    receiver.requests.length = 0;
    const run = await runCli(["admit", "--adjust", "cpu=1.5,mem=512Mi", "example/admission/new-job-pod.json"], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme" });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(lines.slice(0, -1).map((line) => (line.message as { event: string }).event), ["WHATS_NEXT", "DESCRIPTION", "WHATS_NEXT", "ADJUSTMENT", "WHATS_NEXT"]);
    const admission = lines.at(-1) as { result: string; settings: unknown; patch: unknown[]; resources: unknown };
    assert.equal(admission.result, "adjusted");
    assert.deepEqual(admission.settings, [{ container: "worker", cpu: 1.5, mem: 536870912 }]);
    assert.deepEqual(admission.resources, {
      container: "worker",
      before: { limits: { cpu: "1", memory: "512Mi" }, requests: { cpu: "1", memory: "512Mi" } },
      after: { limits: { cpu: "1500m", memory: "512Mi" }, requests: { cpu: "1500m", memory: "512Mi" } },
    });
    assert.match(run.stderr, /new-job-pod.json: adjusted default\/resize-images-\*: Optune's settings applied\n  worker resources before: .*\n  worker resources after: /);
    assert.equal(receiver.requests.length, 0, "a sample answer is a dry run: nothing is sent");
  });

  test("--adjust outside Optune's ranges: the ADJUST is refused, as Optune would be told, and the pod unchanged", async () => {
    const run = await runCli(["admit", "--adjust", "cpu=9", "example/admission/new-job-pod.json"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /unchanged default\/resize-images-\*: ADJUST refused: worker cpu 9 is outside 0.1..3.5/);
    assert.match(run.stdout, /"event":"ADJUSTMENT","param":\{"status":"failed"/);
  });

  test("a Pod as YAML on stdin (-), as kubectl prints it; a plain dry run says how to see an adjustment", async () => {
    const { stringify } = await import("yaml");
    const child = startCli(["admit", "--dry-run", "-"]);
    const done = collect(child);
    child.stdin?.end(stringify(JSON.parse(readFileSync("example/admission/new-job-pod.json", "utf8"))));
    const run = await done;
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^\(stdin\): unchanged default\/resize-images-\*: Optune set nothing\n  \(a dry run asks no one.*--adjust cpu=1.5,mem=512Mi/m);
  });

  test("wrong input exits 2 naming the file and the problem: a CloudEvent, a bad --adjust", async () => {
    const event = await runCli(["admit", "example/events/01-succeeded-job.json"]);
    assert.equal(event.code, 2);
    assert.match(event.stderr, /^example\/events\/01-succeeded-job.json: a CloudEvent, which is what the function takes: give it to invoke/);
    assert.equal(event.stdout, "");
    const flag = await runCli(["admit", "--adjust", "cpu=lots", "example/admission/new-job-pod.json"]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--adjust cpu=lots is not a cpu quantity/);
  });
});

describe("servo-k8s-multijob dead-letters", () => {
  test("logs each dead letter as its id, type, pod and Knative's error, never the pod's env values; answers 202", async () => {
    const child = startCli(["dead-letters"], { PORT: "0" });
    const done = collect(child);
    const port = await new Promise<number>((resolve) => {
      let seen = "";
      child.stderr?.on("data", (chunk: Buffer) => {
        seen += chunk.toString();
        const match = /"msg":"dead-letter sink listening","port":(\d+)/.exec(seen);
        if (match) resolve(Number(match[1]));
      });
    });
    const pod = jobPod({ namespace: "batch", name: "resize-1" }) as any;
    pod.spec.containers[0].env.push({ name: "DB_PASSWORD", value: "hunter2-secret" });
    const response = await fetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "https://10.0.0.1:443", "ce-type": "dev.knative.apiserver.resource.update", "ce-knativeerrorcode": "503", "ce-knativeerrordest": "http://servo-k8s-multijob.optune-servo.svc.cluster.local" },
      body: JSON.stringify(pod),
    });
    assert.equal(response.status, 202);
    const garbage = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers: { "content-type": "text/plain" }, body: "not an event" });
    assert.equal(garbage.status, 202, "a sink that refuses leaves the Broker retrying");
    child.kill("SIGTERM");
    const run = await done;
    assert.equal(run.code, 0);
    const line = run.stderr.split("\n").find((text) => text.includes('"msg":"dead letter"'));
    assert.ok(line, run.stderr);
    assert.deepEqual(
      (({ id, type, source, pod, errorCode, errorDest }) => ({ id, type, source, pod, errorCode, errorDest }))(JSON.parse(line)),
      { id: "e-1", type: "dev.knative.apiserver.resource.update", source: "https://10.0.0.1:443", pod: "batch/resize-1", errorCode: "503", errorDest: "http://servo-k8s-multijob.optune-servo.svc.cluster.local" },
    );
    assert.doesNotMatch(run.stderr, /hunter2/);
    assert.match(run.stderr, /"msg":"dead letter that is not a CloudEvent"/);
  });
});

describe("a port another program holds", () => {
  test("serve and webhook say so in one line naming the variable that moves them, exit 1, no stack trace", async () => {
    const net = await import("node:net");
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      const serve = await runCli(["serve"], { PORT: String(port) });
      assert.equal(serve.code, 1);
      assert.equal(serve.stderr, `servo-k8s-multijob: cannot listen on port ${port}: another program is listening on it (a port-forward to a gateway often is, on 8080); choose another with PORT, e.g. PORT=${port + 1}\n`);
      const pair = await makeCertificate();
      const webhook = await runCli(["webhook"], { WEBHOOK_PORT: String(port), WEBHOOK_TLS_CERT_FILE: file("busy.crt", pair.cert), WEBHOOK_TLS_KEY_FILE: file("busy.key", pair.key) });
      assert.equal(webhook.code, 1);
      assert.match(webhook.stderr, new RegExp(`^servo-k8s-multijob: cannot listen on port ${port}: .*choose another with WEBHOOK_PORT, e\\.g\\. WEBHOOK_PORT=${port + 1}\n$`));
    } finally {
      holder.close();
    }
  });
});

describe("servo-k8s-multijob webhook", () => {
  test("serves AdmissionReviews over HTTPS with the mounted pair; SIGTERM stops it", async () => {
    const pair = await makeCertificate();
    const cert = file("tls.crt", pair.cert);
    const key = file("tls.key", pair.key);
    const child = startCli(["webhook"], { WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: cert, WEBHOOK_TLS_KEY_FILE: key, POD_NAMESPACES: "batch" });
    const done = collect(child);
    const port = await listening(child);
    const status = await new Promise<number>((resolve, reject) =>
      https.get({ host: "127.0.0.1", port, path: "/readyz", ca: pair.cert }, (response) => (response.resume(), resolve(response.statusCode ?? 0))).on("error", reject),
    );
    assert.equal(status, 200);
    const answer = await new Promise<string>((resolve, reject) => {
      const request = https.request({ host: "127.0.0.1", port, path: "/mutate", method: "POST", ca: pair.cert }, (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => resolve(text));
      });
      request.on("error", reject);
      request.end(JSON.stringify(admissionReview(atCreate(jobPod()), { uid: "cli-1" })));
    });
    assert.deepEqual(JSON.parse(answer), { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "cli-1", allowed: true } });
    child.kill("SIGTERM");
    const run = await done;
    assert.equal(run.code, 0, run.stderr);
    // Without an account it runs dry: the question it would have asked is printed, not sent.
    assert.match(run.stdout, /"message":\{"event":"WHATS_NEXT","param":null\}/);
  });

  test("without its certificate: one line naming the variable, exit 2", async () => {
    const run = await runCli(["webhook"], { WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: "/nonexistent/tls.crt" });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^servo-k8s-multijob: invalid configuration: WEBHOOK_TLS_CERT_FILE names a file that cannot be read: ENOENT/);
  });
});

describe("npm run demo", () => {
  test("adjusts a new pod through the webhook, measures it with its settings, and replays the examples through HTTP", async () => {
    const run = await runCli(["demo"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /1\. A new pod of Job resize-images admitted through the webhook/);
    assert.match(run.stdout, /worker\s+1 → 1500m \(1\.5 cores\)\s+512Mi → 512Mi \(536870912 bytes\)\s+\{"container":"worker","cpu":1\.5,"mem":536870912\}/);
    assert.match(run.stdout, /2\. Replayed 6 events in binary mode/);
    // A delete is the one event the API server cannot confirm: unauthenticated, it is not believed.
    assert.match(run.stdout, /example\/events\/04-never-ran-job\.json\s+200\s+ignored\s+unconfirmed-delete/);
    if (findPrometheus() === undefined) {
      assert.match(run.stdout, /3\. Resource usage: no Prometheus here/);
      assert.match(run.stdout, /The stand-in got 4 MEASUREMENTs:/);
    } else {
      // With Debian's prometheus, a job runs on the stand-in kubelet: its MEASUREMENT carries cpu_time (about 0.5 x 6 s) and max_memory (96 MiB).
      assert.match(run.stdout, /The stand-in got 5 MEASUREMENTs:/);
      assert.match(run.stdout, /default\/thumbnails-res42\s+nightly-thumbnails\s+6 s\s+0\s+-\s+(2\.[5-9]\d*|3(\.0+)?) s\s+100663296 bytes/);
    }
    assert.match(run.stdout, /default\/resize-images-demo1\s+resize-images\s+73 s\s+0\s+\{"container":"worker","cpu":1\.5,"mem":536870912\}/);
    assert.match(run.stdout, /default\/nightly-thumbnails-x7k2p\s+nightly-thumbnails\s+95 s\s+0\s+-/);
    assert.match(run.stdout, /default\/train-model-b5t8w\s+train-model\s+605 s\s+137/);
    assert.match(run.stdout, /Lifecycle messages to app _global_: HELLO, GOODBYE \(signal 15\)\. The function exited with code 0, the webhook with 0\./);
  });

  /** Starts the demo and resolves with the PIDs of its function and webhook once both listen. */
  async function demoChildren(): Promise<{ child: ReturnType<typeof startCli>; pids: number[]; done: ReturnType<typeof collect> }> {
    const child = startCli(["demo"]);
    const done = collect(child);
    const pids = await new Promise<number[]>((resolve, reject) => {
      let seen = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        seen += chunk.toString();
        const match = /\(PID (\d+)\); admission webhook on .*\(PID (\d+)\)/.exec(seen);
        if (match) resolve([Number(match[1]), Number(match[2])]);
      });
      child.once("exit", () => reject(new Error(`the demo ended before its servers listened: ${seen}`)));
    });
    return { child, pids, done };
  }

  /** Running: it exists and is not a zombie waiting for a parent that is gone. */
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
    } catch {
      return false;
    }
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      return false;
    }
  };

  /** The PIDs still running a second after the demo ended (a killed process takes a moment to go). */
  async function stillAlive(pids: number[]): Promise<number[]> {
    for (let waited = 0; waited < 1000 && pids.some(alive); waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    return pids.filter(alive);
  }

  test("SIGTERM to the demo ends its function and webhook too", async () => {
    const { child, pids, done } = await demoChildren();
    assert.ok(pids.every(alive));
    child.kill("SIGTERM");
    const run = await done;
    assert.equal(run.code, 143, run.stderr);
    assert.deepEqual(await stillAlive(pids), [], "no server of the demo is left running");
  });

  test("demo | head: when the reader goes away, the demo stops quietly and takes its servers with it", async () => {
    const { child, pids, done } = await demoChildren();
    child.stdout?.destroy();
    const run = await done;
    assert.equal(run.code, 0, `signal ${run.signal}: ${run.stderr}`);
    assert.doesNotMatch(run.stderr, /EPIPE|Error/);
    assert.deepEqual(await stillAlive(pids), []);
  });
});

describe("demo FILE", () => {
  test("watches default (its sample pod) and every namespace the files' pods are in", async () => {
    const { watchedNamespaces } = await import("../handler/demo/demo.js");
    const { readEventFile } = await import("../handler/measure/invoke.js");
    const list = { apiVersion: "v1", kind: "List", items: [jobPod({ namespace: "batch" }), jobPod({ namespace: "etl", name: "e1" }), jobPod({ namespace: "batch", name: "b2" })] };
    const loaded = await readEventFile(file("demo-pods.json", list));
    assert.ok("events" in loaded);
    assert.deepEqual(watchedNamespaces(loaded.events), ["batch", "default", "etl"]);
  });
});
