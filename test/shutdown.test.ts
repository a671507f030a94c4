// SIGTERM against the real command: the function ends within SHUTDOWN_TIMEOUT whatever a remote
// does, a second signal ends it at once, and no event is answered 200 unless Optune has it.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, test } from "node:test";
import { collect, listening, startCli, type Run } from "./support/cli.js";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.js";
import { jobPod } from "./support/pods.js";
import { startRemote, type Remote } from "./support/remote.js";
import { scratchDir } from "./support/scratch.js";
import { podEvent } from "./support/stack.js";

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of cleanup.splice(0)) await close();
});

async function start(remote: Remote, env: Record<string, string> = {}): Promise<{ child: ChildProcess; done: Promise<Run>; url: string }> {
  const child = startCli(["serve"], {
    PORT: "0",
    OPTUNE_URL: `${remote.url}/metrics/{acct}/{app_id}/servo`,
    OPTUNE_ACCOUNT: "acme",
    POD_NAMESPACES: "batch",
    OPTUNE_DEDUPE: "memory",
    LOG_LEVEL: "info", // the "listening" line tells the port
    ...env,
  });
  cleanup.push(async () => child.kill("SIGKILL"));
  const done = collect(child);
  const port = await listening(child);
  return { child, done, url: `http://127.0.0.1:${port}/` };
}

async function remote(behave: Remote["behave"]): Promise<Remote> {
  const started = await startRemote(behave);
  cleanup.push(() => started.close());
  return started;
}

const post = (url: string, event: unknown, type = "application/cloudevents+json") =>
  fetch(url, { method: "POST", headers: { "content-type": type }, body: JSON.stringify(event) }).then(
    async (response) => ({ status: response.status, body: (await response.json()) as { outcome?: string; outcomes?: Array<{ outcome: string }> } }),
    () => ({ status: 0, body: {} }),
  );

/** Posts a job pod's event, SIGTERMs the function half a second later: the event's answer, the run, and how long from the signal to the end. */
async function stopWithEventInFlight(fn: Awaited<ReturnType<typeof start>>, uid: string): Promise<{ status: number; run: Run; tookMs: number }> {
  const answer = post(fn.url, podEvent(jobPod({ uid })));
  await new Promise((resolve) => setTimeout(resolve, 500));
  const started = Date.now();
  fn.child.kill("SIGTERM");
  const { status } = await answer;
  const run = await fn.done;
  return { status, run, tookMs: Date.now() - started };
}

const isMeasurement = (request: Remote["seen"][number]) => request.body.includes('"MEASUREMENT"');

describe("SIGTERM", () => {
  test("Optune never answers and the delivery deadline is an hour: the function still ends within SHUTDOWN_TIMEOUT", async () => {
    const optune = await remote(() => ({ hang: true }));
    const fn = await start(optune, { OPTUNE_SEND_DEADLINE: "3600", SHUTDOWN_TIMEOUT: "3" });
    await new Promise((resolve) => setTimeout(resolve, 200)); // HELLO is in flight, retrying
    const started = Date.now();
    fn.child.kill("SIGTERM");
    const run = await fn.done;
    const took = Date.now() - started;
    assert.equal(run.code, 0, run.stderr);
    assert.ok(took < 3000 + 1500, `took ${took} ms`);
    assert.match(run.stderr, /"msg":"stopped"/);
  });

  test("a second SIGTERM ends it at once", async () => {
    const optune = await remote(() => ({ hang: true }));
    const fn = await start(optune, { OPTUNE_SEND_DEADLINE: "3600", SHUTDOWN_TIMEOUT: "60" });
    fn.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    fn.child.kill("SIGTERM");
    const run = await fn.done;
    assert.equal(run.code, 143);
    assert.ok(Date.now() - started < 1000);
  });

  test("a batch in flight is bounded as a whole: 503 within the grace period, and nothing is posted after the process ended", async () => {
    const optune = await remote(() => ({ hang: true }));
    const fn = await start(optune, { OPTUNE_SEND_DEADLINE: "20", OPTUNE_SEND_TIMEOUT: "1", SHUTDOWN_TIMEOUT: "2" });
    const batch = Array.from({ length: 4 }, (_, index) => podEvent(jobPod({ uid: `uid-batch-${index}`, name: `batch-${index}` })));
    const answer = post(fn.url, batch, "application/cloudevents-batch+json");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    fn.child.kill("SIGTERM");
    const { status } = await answer;
    const run = await fn.done;
    assert.equal(status, 503);
    assert.ok(Date.now() - started < 2000 + 1500, `took ${Date.now() - started} ms`);
    assert.equal(run.code, 0);
    const seen = optune.seen.length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(optune.seen.length, seen, "no request after the process ended");
  });

  test("50 deliveries in flight, Optune slow but up: all 50 delivered, the process ends", async () => {
    const optune = await remote(() => ({ status: 200, trickle: "{}", everyMs: 150 }));
    const fn = await start(optune, { SHUTDOWN_TIMEOUT: "10" });
    const answers = Array.from({ length: 50 }, (_, index) => post(fn.url, podEvent(jobPod({ uid: `uid-load-${index}`, name: `load-${index}` }))));
    while (optune.seen.filter(isMeasurement).length < 50) await new Promise((resolve) => setTimeout(resolve, 10));
    fn.child.kill("SIGTERM");
    const results = await Promise.all(answers);
    assert.deepEqual(new Set(results.map((result) => result.status)), new Set([200]));
    assert.equal((await fn.done).code, 0);
    assert.equal(optune.seen.filter(isMeasurement).length, 50);
  });

  test("50 deliveries in flight, Optune hanging: each is answered 503, none 200, within the grace period", async () => {
    const optune = await remote(() => ({ hang: true }));
    const fn = await start(optune, { SHUTDOWN_TIMEOUT: "2", OPTUNE_SEND_TIMEOUT: "30", OPTUNE_SEND_DEADLINE: "60" });
    const answers = Array.from({ length: 50 }, (_, index) => post(fn.url, podEvent(jobPod({ uid: `uid-hang-${index}`, name: `hang-${index}` }))));
    while (optune.seen.filter(isMeasurement).length < 50) await new Promise((resolve) => setTimeout(resolve, 10));
    const started = Date.now();
    fn.child.kill("SIGTERM");
    const results = await Promise.all(answers);
    assert.deepEqual(new Set(results.map((result) => result.status)), new Set([503]));
    assert.ok(Date.now() - started < 2000 + 1500);
    assert.equal((await fn.done).code, 0);
  });

  test("a Kubernetes API that never answers does not hold the shutdown", async () => {
    const optune = await remote(() => ({ status: 200 }));
    const api: FakeApiServer = await startFakeApiServer();
    cleanup.push(() => api.close());
    api.fault = () => "hang";
    const { status, run, tookMs } = await stopWithEventInFlight(await start(optune, { KUBECONFIG: api.kubeconfig, OPTUNE_DEDUPE: "annotation", KUBE_API_TIMEOUT: "60", SHUTDOWN_TIMEOUT: "2" }), "uid-k8s-hang");
    assert.ok(status === 503 || status === 0, `status ${status}`);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(tookMs < 2000 + 1500, `took ${tookMs} ms`);
    assert.equal(optune.seen.filter(isMeasurement).length, 0);
  });

  test("a Prometheus query that never answers is ended by the shutdown: its event is answered 503 within the grace period", async () => {
    const optune = await remote(() => ({ status: 200 }));
    const prometheus = await remote(() => ({ hang: true }));
    const fn = await start(optune, { PROMETHEUS_URL: prometheus.url, PROMETHEUS_TIMEOUT: "10", SHUTDOWN_TIMEOUT: "2" });
    const answer = post(fn.url, podEvent(jobPod({ uid: "uid-prometheus-hang" })));
    while (prometheus.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const started = Date.now();
    fn.child.kill("SIGTERM");
    const { status } = await answer;
    const run = await fn.done;
    assert.equal(run.code, 0, run.stderr);
    assert.ok(Date.now() - started < 2000 + 1500, `took ${Date.now() - started} ms`);
    assert.equal(status, 503);
    assert.equal(optune.seen.filter(isMeasurement).length, 0);
  });

  test("an exec credential plugin that never answers: the event in flight is answered 503, and the function ends", async () => {
    const optune = await remote(() => ({ status: 200 }));
    const api: FakeApiServer = await startFakeApiServer();
    cleanup.push(() => api.close());
    const kubeconfig = join(scratchDir("hung-plugin-"), "config");
    const exec = ["    exec:", "      apiVersion: client.authentication.k8s.io/v1", "      command: /bin/sh", '      args: ["-c", "exec sleep 600"]', "      interactiveMode: Never"];
    writeFileSync(kubeconfig, readFileSync(api.kubeconfig, "utf8").replace("    token: fake-token", exec.join("\n")));
    const { status, run, tookMs } = await stopWithEventInFlight(await start(optune, { KUBECONFIG: kubeconfig, OPTUNE_DEDUPE: "annotation", KUBE_API_TIMEOUT: "60", SHUTDOWN_TIMEOUT: "2" }), "uid-plugin-hang");
    assert.equal(status, 503);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(tookMs < 2000 + 1500, `took ${tookMs} ms`);
    assert.equal(api.requests.length, 0);
  });
});
