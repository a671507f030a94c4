// Hardening, round three: trust nothing that reaches the function, the webhook or `manifests`.
// Each block pins one defect of the hostile run against 958b1f1 (the issue's numbering in brackets);
// every test here failed on that commit.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { createAdmitter } from "../handler/adjust/admit.js";
import { startWebhook, type RunningWebhook } from "../handler/adjust/webhook.js";
import { parseAppIdPath } from "../handler/jobs/app-id.js";
import { ConfigError, loadConfig } from "../handler/edges/config.js";
import { appIdCondition, celString } from "../handler/deploy/manifests.js";
import { silentLogger } from "../handler/edges/log.js";
import { createHandler } from "../handler/measure/handle.js";
import { memoryLedger } from "../handler/measure/ledger.js";
import { createOutcomeLog } from "../handler/measure/outcome-log.js";
import { createHttpServer } from "../handler/measure/server.js";
import { sweep, SweepStopped } from "../handler/measure/sweep.js";
import type { PodApi } from "../handler/edges/kubernetes.js";
import { startReceiver, type Receiver } from "../handler/demo/optune-stand-in.js";
import type { Pod } from "../handler/jobs/pod.js";
import { admissionReview, atCreate, makeCertificate } from "./support/admission.js";
import { runCli } from "./support/cli.js";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.js";
import { jobPod } from "./support/pods.js";
import { podEvent, startStack, type Stack } from "./support/stack.js";
import { scratchDir } from "./support/scratch.js";
import { serviceAccountToken } from "./support/tokens.js";
import { createEventAuthenticator } from "../handler/measure/event-auth.js";

type Answer = { outcome?: string; code?: string; reason?: string; error?: string; outcomes?: Answer[] };
const TOKEN = "optune-SECRET-token-42";
const JOBS = { POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme", OPTUNE_AUTH_TOKEN: TOKEN, LOG_LEVEL: "debug" };
const referenceEvent = (name: unknown, namespace: unknown = "batch", action = "update") => ({
  specversion: "1.0",
  id: `ref-${Math.random()}`,
  source: "https://10.96.0.1:443",
  type: `dev.knative.apiserver.ref.${action}`,
  datacontenttype: "application/json",
  data: { apiVersion: "v1", kind: "Pod", name, namespace },
});
const ping = () => ({ specversion: "1.0", id: `ping-${Math.random()}`, source: "/apis/v1/namespaces/optune-servo/pingsources/servo-sweep", type: "dev.knative.sources.ping", datacontenttype: "application/json", data: { sweep: true } });
const running = (name: string, uid: string): Pod => jobPod({ name, uid, running: true });

/** A function with claims against the fake API server, for the tests of one describe block. */
function withClaims(): { readonly api: FakeApiServer; readonly stack: Stack } {
  const parts = {} as { api: FakeApiServer; stack: Stack };
  before(async () => {
    parts.api = await startFakeApiServer();
    parts.stack = await startStack({ ...JOBS, KUBECONFIG: parts.api.kubeconfig, OPTUNE_DEDUPE: "annotation" });
  });
  after(async () => {
    await parts.stack.close();
    await parts.api.close();
  });
  return {
    get api() {
      return parts.api;
    },
    get stack() {
      return parts.stack;
    },
  };
}

describe("[1] who may send events: OIDC tokens checked with TokenReview", () => {
  let api: FakeApiServer;
  let stack: Stack;
  const AUDIENCE = "serving.knative.dev/service/optune-servo/servo-k8s-multijob";
  const VALID = serviceAccountToken({ sub: "system:serviceaccount:batch:oidc-apiserversource-job-pods", aud: [AUDIENCE] });
  before(async () => {
    api = await startFakeApiServer();
    api.tokens.set(VALID, { user: "system:serviceaccount:batch:oidc-apiserversource-job-pods", audiences: [AUDIENCE] });
    api.tokens.set("eyJ.other-audience.sig", { user: "system:serviceaccount:batch:someone", audiences: ["somewhere-else"] });
    stack = await startStack({ ...JOBS, KUBECONFIG: api.kubeconfig, OPTUNE_DEDUPE: "memory", OPTUNE_EVENT_AUDIENCE: AUDIENCE });
  });
  after(async () => {
    await stack.close();
    await api.close();
  });
  const send = (event: object, authorization?: string) =>
    stack.post(JSON.stringify(event), { "content-type": "application/cloudevents+json", ...(authorization === undefined ? {} : { authorization }) });

  for (const [label, authorization] of [
    ["no Authorization header", undefined],
    ["a Basic header", "Basic YWRtaW46YWRtaW4="],
    ["a token the API server does not know", "Bearer eyJ.forged-by-anyone.sig"],
    ["a valid token for another audience", "Bearer eyJ.other-audience.sig"],
  ] as const) {
    test(`${label}: 401, nothing sent, no token in the log`, async () => {
      const before = stack.measurements().length;
      const response = await send(podEvent(jobPod({ uid: `uid-401-${label}` }), "delete"), authorization);
      assert.equal(response.status, 401);
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.equal(stack.measurements().length, before);
      assert.ok(!stack.logText().includes("forged-by-anyone") && !stack.logText().includes("other-audience"));
    });
  }

  test("a valid token: the event is handled, deletes are believed, and the verdict is cached for the token's lifetime", async () => {
    const reviewsBefore = api.requests.filter((request) => request.verb === "review").length;
    for (const uid of ["uid-auth-1", "uid-auth-2", "uid-auth-3"]) {
      const response = await send(podEvent(jobPod({ uid, name: uid }), "delete"), `Bearer ${VALID}`);
      assert.equal(((await response.json()) as Answer).outcome, "sent");
    }
    assert.equal(api.requests.filter((request) => request.verb === "review").length - reviewsBefore, 1);
    assert.ok(!stack.logText().includes(VALID));
  });
});

describe("[1] only the sources may speak: a token for the audience from any other pod is refused", () => {
  let api: FakeApiServer;
  let stack: Stack;
  const AUDIENCE = "serving.knative.dev/service/optune-servo/servo-k8s-multijob";
  const SOURCE = "system:serviceaccount:batch:job-pods-oidc-sources.knative.dev-apiserversource";
  const FROM_SOURCE = serviceAccountToken({ sub: SOURCE, aud: [AUDIENCE] });
  const FROM_A_POD = serviceAccountToken({ sub: "system:serviceaccount:batch:default", aud: [AUDIENCE] });
  before(async () => {
    api = await startFakeApiServer();
    api.tokens.set(FROM_SOURCE, { user: SOURCE, audiences: [AUDIENCE] });
    // Any pod can mount a projected token with any audience.
    api.tokens.set(FROM_A_POD, { user: "system:serviceaccount:batch:default", audiences: [AUDIENCE] });
    stack = await startStack({ ...JOBS, KUBECONFIG: api.kubeconfig, OPTUNE_DEDUPE: "memory", OPTUNE_EVENT_AUDIENCE: AUDIENCE, OPTUNE_EVENT_SENDERS: `${SOURCE},system:serviceaccount:optune-servo:servo-sweep-oidc-sources.knative.dev-pingsource`, LOG_LEVEL: "warn" });
  });
  after(async () => {
    await stack.close();
    await api.close();
  });
  const send = (event: object, token: string) => stack.post(JSON.stringify(event), { "content-type": "application/cloudevents+json", authorization: `Bearer ${token}` });

  test("a forged delete of an invented pod, with a valid token for the audience from another pod: 401, nothing sent, one line says whom and why", async () => {
    const response = await send(podEvent(jobPod({ uid: "uid-invented", name: "invented" }), "delete"), FROM_A_POD);
    assert.equal(response.status, 401);
    assert.equal(stack.measurements().length, 0);
    const refused = stack.logs.filter((line) => /event refused/.test(String(line.msg)));
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.reason, "system:serviceaccount:batch:default is not one of the senders this function accepts (OPTUNE_EVENT_SENDERS)");
    assert.ok(!stack.logText().includes(FROM_A_POD));
  });

  test("the source's own token: handled", async () => {
    const response = await send(podEvent(jobPod({ uid: "uid-from-source", name: "from-source" })), FROM_SOURCE);
    assert.equal(((await response.json()) as Answer).outcome, "sent");
  });
});

describe("[1] what the function believes without event authentication", () => {
  const claims = withClaims();

  test("a forged delete of a pod that never existed: ignored, counted, zero Kubernetes calls, nothing sent", async () => {
    const response = await claims.stack.send(podEvent(jobPod({ name: "never-existed", uid: "uid-never" }), "delete"));
    const answer = (await response.json()) as Answer;
    assert.deepEqual([response.status, answer.outcome, answer.code], [200, "ignored", "unconfirmed-delete"]);
    assert.deepEqual(claims.api.requests, []);
    assert.equal(claims.stack.measurements().length, 0);
    const metrics = await (await fetch(new URL("/metrics", claims.stack.fn.url))).text();
    assert.match(metrics, /servo_k8s_multijob_claims_total\{result="unconfirmed_delete"\} 1/);
  });

  test("a forged update for a real running pod (no resourceVersion, so the claim reads the real one): nothing sent, the claim taken back", async () => {
    claims.api.create(running("really-running", "uid-running"));
    const forged = jobPod({ name: "really-running", uid: "uid-running" }) as { metadata: Record<string, unknown> };
    delete forged.metadata.resourceVersion;
    const answer = (await (await claims.stack.send(podEvent(forged))).json()) as Answer;
    assert.deepEqual([answer.outcome, answer.code], ["ignored", "not-confirmed"]);
    assert.equal(claims.stack.measurements().length, 0);
    assert.equal((claims.api.get("batch", "really-running")?.metadata?.annotations as Record<string, string> | undefined)?.["optune.ai/measurement"], undefined);
  });

  test("the MEASUREMENT is built from the API server's pod, not the event's copy", async () => {
    const real = claims.api.create(jobPod({ name: "real-42s", uid: "uid-real" })); // ran 42 s
    const lying = { ...real, status: { containerStatuses: [{ name: "worker", state: { terminated: { exitCode: 0, reason: "Completed", startedAt: "2026-11-24T09:01:04Z", finishedAt: "2026-11-24T19:01:04Z" } } }] } };
    assert.equal(((await (await claims.stack.send(podEvent(lying))).json()) as Answer).outcome, "sent");
    const [post] = claims.stack.measurements().filter((request) => request.headers["idempotency-key"] === "uid-real");
    assert.equal((post?.body as { param: { metrics: { duration: { value: number } } } }).param.metrics.duration.value, 42);
  });

  test("a batch of more than 100 events: 413, none handled", async () => {
    const before = claims.stack.measurements().length;
    const events = Array.from({ length: 101 }, (_, index) => podEvent(jobPod({ name: `batch-${index}`, uid: `uid-batch-${index}` }), "delete"));
    const response = await claims.stack.post(JSON.stringify(events), { "content-type": "application/cloudevents-batch+json" });
    assert.equal(response.status, 413);
    assert.match(((await response.json()) as Answer).error ?? "", /at most 100 CloudEvents/);
    assert.equal(claims.stack.measurements().length, before);
  });
});

describe("[1] in memory mode a forged delete neither reports nor suppresses", () => {
  test("the forged delete is ignored; the pod's real terminated update is still reported", async () => {
    const stack = await startStack({ ...JOBS, OPTUNE_DEDUPE: "memory" });
    try {
      const forged = (await (await stack.send(podEvent(jobPod({ uid: "uid-victim" }), "delete"))).json()) as Answer;
      assert.equal(forged.code, "unconfirmed-delete");
      const real = (await (await stack.send(podEvent(jobPod({ uid: "uid-victim" })))).json()) as Answer;
      assert.equal(real.outcome, "sent");
      assert.equal(stack.measurements().length, 1);
    } finally {
      await stack.close();
    }
  });
});

describe("[4] names that are not pod names never reach the Kubernetes client", () => {
  const claims = withClaims();

  for (const name of ["", ".", "..", "a/b", "UPPER", "x".repeat(254)]) {
    test(`a Reference event named ${JSON.stringify(name.slice(0, 12))}: 400, no request`, async () => {
      const response = await claims.stack.send(referenceEvent(name), "structured");
      assert.equal(response.status, 400);
      assert.deepEqual(claims.api.requests, []);
    });
  }

  test("a Reference event in the namespace \"..\": 400, no request", async () => {
    assert.equal((await claims.stack.send(referenceEvent("pod-1", ".."), "structured")).status, 400);
    assert.deepEqual(claims.api.requests, []);
  });

  test("a Resource-mode job pod named \"..\": ignored as a bad name, no request (it had PATCHed the Namespace)", async () => {
    const answer = (await (await claims.stack.send(podEvent(jobPod({ name: ".." })))).json()) as Answer;
    assert.deepEqual([answer.outcome, answer.code], ["ignored", "bad-name"]);
    assert.deepEqual(claims.api.requests, []);
  });
});

describe("[7][8] sweeps: one at a time, and bounded", () => {
  test("25 pings at once run one sweep: one LIST per namespace, every ping answered with its result", async () => {
    const api = await startFakeApiServer();
    const stack = await startStack({ ...JOBS, POD_NAMESPACES: "batch,etl", KUBECONFIG: api.kubeconfig, OPTUNE_DEDUPE: "annotation", OPTUNE_SWEEP_MAX_AGE: "2592000" });
    try {
      api.create(jobPod({ name: "swept", uid: "uid-swept" }));
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      let lists = 0;
      api.fault = ({ verb }) => {
        if (verb === "list") lists++;
        return undefined;
      };
      api.onPatched = () => gate;
      const answers = Promise.all(Array.from({ length: 25 }, () => stack.send(ping(), "structured").then((response) => response.json() as Promise<Answer>)));
      await new Promise((resolve) => setTimeout(resolve, 200));
      release();
      const all = await answers;
      assert.ok(all.every((answer) => answer.outcome === "swept"), JSON.stringify(all[0]));
      assert.equal(lists, 2);
      assert.equal(stack.measurements().length, 1);
    } finally {
      await stack.close();
      await api.close();
    }
  });

  test("a batch of 10 pings in one request runs one sweep: its items share it, each answered with its result", async () => {
    const api = await startFakeApiServer();
    const stack = await startStack({ ...JOBS, POD_NAMESPACES: "batch,etl", KUBECONFIG: api.kubeconfig, OPTUNE_DEDUPE: "annotation", OPTUNE_SWEEP_MAX_AGE: "2592000" }, { sweepAtStart: false });
    try {
      api.create(jobPod({ name: "swept-in-batch", uid: "uid-swept-in-batch" }));
      let lists = 0;
      api.fault = ({ verb }) => {
        if (verb === "list") lists++;
        return undefined;
      };
      const batch = Array.from({ length: 10 }, (_, index) => ({ ...ping(), id: `ping-${index}` }));
      const response = await stack.post(JSON.stringify(batch), { "content-type": "application/cloudevents-batch+json" });
      const { outcomes: answers } = (await response.json()) as { outcomes: Answer[] };
      assert.equal(answers.length, 10);
      assert.ok(answers.every((answer) => answer.outcome === "swept"), JSON.stringify(answers[0]));
      assert.equal(lists, 2, "one LIST per namespace");
      assert.equal(stack.measurements().length, 1);
    } finally {
      await stack.close();
      await api.close();
    }
  });

  const pages = (next: (call: number) => string | undefined): PodApi & { calls: number } => {
    const api = {
      calls: 0,
      read: async () => undefined,
      patch: async () => ({}),
      list: async () => {
        const token = next(++api.calls);
        return { items: [], ...(token === undefined ? {} : { continue: token }) };
      },
    };
    return api;
  };
  const sweepWith = (api: PodApi, extra: object = {}) => sweep({ api, namespaces: ["batch"], report: async () => ({ kind: "ignored", code: "not-finished", reason: "" }), now: Date.now, maxAgeMs: 3600_000, ...extra });

  test("an API that repeats its continue token: the sweep stops at the repeat, not after 32,149 LISTs", async () => {
    const api = pages(() => "same-token");
    await assert.rejects(sweepWith(api), (error: Error) => error instanceof SweepStopped && /repeated a continue token/.test(error.message));
    assert.equal(api.calls, 2);
  });

  test("an API whose list never ends: stopped at the page bound", async () => {
    const api = pages((call) => `token-${call}`);
    await assert.rejects(sweepWith(api, { maxPages: 50 }), /did not end within 50 pages/);
    assert.equal(api.calls, 50);
  });

  test("nobody waits any more: the sweep stops before its next page", async () => {
    const stop = new AbortController();
    const api = pages((call) => {
      if (call === 3) stop.abort();
      return `token-${call}`;
    });
    await assert.rejects(sweepWith(api, { signal: stop.signal }), SweepStopped);
    assert.equal(api.calls, 3);
  });
});

describe("[3] silent connections are closed; a flood does not shut out probes", () => {
  const connect = (port: number) =>
    new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
      socket.once("error", reject);
    });
  const closed = (socket: net.Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once("close", () => resolve())));

  test("the function: a connection that sends nothing is closed by the server; beyond the cap the oldest silent one goes and /healthz is answered", async () => {
    const handle = createHandler({ criteria: { namespaces: new Set(["batch"]), appIdPath: parseAppIdPath("spec/containers/0/env/[JOBID]"), appIdSpec: "x" }, ledger: memoryLedger(), deliver: async () => ({ ok: true, attempts: 1 }), log: silentLogger, sweep: { unavailable: "-" } });
    const server = createHttpServer({ handle, log: silentLogger, outcomes: createOutcomeLog(silentLogger, "x"), connectionLimits: { silentMs: 300, handshakeMs: 300, max: 20 } });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const silent = await Promise.all(Array.from({ length: 30 }, () => connect(port)));
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(health.status, 200);
      // Every silent socket is closed by the server (the test would hang, not pass, if one were kept).
      await Promise.all(silent.map(closed));
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });

  test("the webhook: a TCP connection without a ClientHello, and a TLS connection that sends no request, are both closed", async () => {
    const receiver = await startReceiver();
    const dir = scratchDir("trust-tls-");
    const pair = await makeCertificate();
    writeFileSync(join(dir, "tls.crt"), pair.cert);
    writeFileSync(join(dir, "tls.key"), pair.key);
    const config = loadConfig({ ...JOBS, WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"), WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key"), OPTUNE_URL: receiver.template, OPTUNE_DEDUPE: "memory", WEBHOOK_SHUTDOWN_DELAY: "0" });
    const webhook = await startWebhook(config, { print: () => {}, logLine: () => {}, connectionLimits: { silentMs: 300, handshakeMs: 300, max: 100 } });
    try {
      const raw = await connect(webhook.port);
      const quiet = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const socket = tls.connect(webhook.port, "127.0.0.1", { rejectUnauthorized: false }, () => resolve(socket));
        socket.once("error", reject);
      });
      await Promise.all([closed(raw), new Promise<void>((resolve) => quiet.once("close", () => resolve()))]);
    } finally {
      await webhook.stop("test over");
      await receiver.close();
    }
  });
});

describe("the webhook", () => {
  const criteria = { namespaces: new Set(["batch"]), appIdPath: parseAppIdPath("spec/containers/0/env/[JOBID]"), appIdSpec: "spec/containers/0/env/[JOBID]" };
  const ranges = { cpu: { min: 0.1, max: 3.5, step: 0.001 }, mem: { min: 67108864, max: 1073741824, step: 4096 } };
  const ADJUST = JSON.stringify({ cmd: "ADJUST", param: { state: { application: { components: { worker: { settings: { cpu: { value: 3.5 }, mem: { value: 1073741824 } } } } } } } });
  const decode = (review: Record<string, unknown>) => {
    const request = review.request as Record<string, unknown>;
    return { uid: "u", operation: "CREATE", resource: "/pods", namespace: "batch", dryRun: false, object: request.object };
  };

  test("[6] a pod created with an optune.ai/settings annotation the webhook did not write: the annotation is removed", async () => {
    let asked = 0;
    const admit = createAdmitter({ criteria, ranges, budgetMs: 1000, deliver: async () => ((asked++, { ok: true, attempts: 1, answer: '{"cmd":"MEASURE"}' })) });
    const pod = atCreate(jobPod({ annotations: { "optune.ai/settings": '{"container":"worker","cpu":3.5,"mem":1073741824}' } }));
    const admission = await admit(decode(admissionReview(pod)));
    assert.equal(asked, 1);
    assert.deepEqual(admission.patch, [{ op: "remove", path: "/metadata/annotations/optune.ai~1settings" }]);
  });

  test("[9] a pod with pod-level resources (spec.resources): Optune is not asked, the pod is admitted unchanged with a warning", async () => {
    let asked = 0;
    const admit = createAdmitter({ criteria, ranges, budgetMs: 1000, deliver: async () => ((asked++, { ok: true, attempts: 1, answer: ADJUST })) });
    const pod = atCreate(jobPod()) as { spec: Record<string, unknown> };
    pod.spec.resources = { limits: { cpu: "1", memory: "512Mi" } };
    const admission = await admit(decode(admissionReview(pod)));
    assert.deepEqual([asked, admission.result, admission.patch], [0, "skipped", undefined]);
    assert.match(admission.warning ?? "", /pod-level resources/);
  });

  describe("over HTTPS", () => {
    let receiver: Receiver;
    let webhook: RunningWebhook;
    const logs: string[] = [];
    let ca: string;
    before(async () => {
      receiver = await startReceiver();
      const dir = scratchDir("trust-webhook-");
      const pair = await makeCertificate("127.0.0.1");
      ca = pair.cert;
      writeFileSync(join(dir, "tls.crt"), pair.cert);
      writeFileSync(join(dir, "tls.key"), pair.key);
      const config = loadConfig({ ...JOBS, WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"), WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key"), OPTUNE_URL: receiver.template, OPTUNE_DEDUPE: "memory", WEBHOOK_SHUTDOWN_DELAY: "1", SHUTDOWN_TIMEOUT: "3" });
      webhook = await startWebhook(config, { print: () => {}, logLine: (line) => logs.push(line) });
    });
    after(async () => {
      await webhook.stop("test over");
      await receiver.close();
    });
    const request = (path: string, body?: unknown) =>
      new Promise<number>((resolve, reject) => {
        const call = https.request(new URL(path, webhook.url), { method: body === undefined ? "GET" : "POST", ca, rejectUnauthorized: false, agent: false }, (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
        });
        call.on("error", reject);
        call.end(body === undefined ? undefined : JSON.stringify(body));
      });

    test("[13] a cmd that reflects the token, 60,000 characters long: not in the log, and no line longer than 2,000 characters", async () => {
      receiver.respond = () => ({ status: 200, body: JSON.stringify({ cmd: `${TOKEN}${"x".repeat(60_000)}` }) });
      assert.equal(await request("/mutate", admissionReview(atCreate(jobPod()))), 200);
      const text = logs.join("\n");
      assert.ok(!text.includes(TOKEN), "the token is in the log");
      assert.ok(logs.every((line) => line.length < 2000), `a log line of ${Math.max(...logs.map((line) => line.length))} characters`);
    });

    test("[15] on SIGTERM /readyz fails at once and admissions are still served, then the server drains", async () => {
      receiver.respond = () => ({ status: 200, body: '{"cmd":"MEASURE"}' });
      const stopped = webhook.stop("SIGTERM");
      assert.equal(await request("/readyz"), 503);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await request("/mutate", admissionReview(atCreate(jobPod()))), 200);
      await stopped;
      await assert.rejects(request("/healthz"), /ECONNREFUSED/);
    });
  });
});

describe("[2][10][11][12] manifests refuse what would make other objects", () => {
  // An image first: a later --image in args replaces it.
  const manifests = (...args: string[]) => runCli(["manifests", "--image", "registry.example.com/servo-k8s-multijob:1.0.0", ...args]);

  for (const [label, args] of [
    ["--app-id with a newline and a ClusterRoleBinding", ["--app-id", "metadata/labels/app\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding"]],
    ["--account with NEL (kubectl's YAML ends a comment there)", ["--account", 'acme\u0085{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}\u0085#']],
    ["--image with NEL", ["--image", "ghcr.io/acme/servo:1\u0085kind: Namespace"]],
    ["--app-id with U+2028", ["--app-id", "metadata/labels/app\u2028x"]],
    ["--selector with a tab", ["--selector", "team=ml\tx"]],
    ["--image with a quote", ["--image", 'ghcr.io/acme/servo:1"']],
  ] as const) {
    test(`[2] ${label}: exit 2`, async () => {
      const run = await manifests(...args);
      assert.equal(run.code, 2, run.stdout);
      assert.equal(run.stdout, "");
    });
  }

  test("[2] the header shows the command rebuilt from the checked flags, shell-quoted", async () => {
    const run = await manifests("--watch", "batch", "--account", "acme.example.com", "--app-id", "spec/containers/0/env/[MY JOB]");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^# Generated by: servo-k8s-multijob manifests --watch batch --image registry\.example\.com\/servo-k8s-multijob:1\.0\.0 --account acme\.example\.com --app-id 'spec\/containers\/0\/env\/\[MY JOB\]'\n# Apply with:   servo-k8s-multijob manifests .* \| kubectl apply -f -\n/);
  });

  test("[2] OPTUNE_ACCOUNT, OPTUNE_APP_ID and paths with NEL or a newline are refused by the configuration too", () => {
    for (const [variable, value] of [["OPTUNE_ACCOUNT", "acme\u0085x"], ["OPTUNE_APP_ID", "metadata/labels/app\nx"], ["WEBHOOK_TLS_CERT_FILE", "/tls\u2029.crt"]] as const) {
      assert.throws(() => loadConfig({ [variable]: value }), (error: Error) => error instanceof ConfigError && error.variable === variable && /one line of printable characters/.test(error.message));
    }
  });

  test("[1] the Knative Service is cluster-local and a NetworkPolicy admits only the data plane", async () => {
    const run = await manifests("--watch", "batch");
    const documents = parseAllDocuments(run.stdout).map((document) => document.toJS() as { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec: Record<string, unknown> });
    const service = documents.find((document) => document.kind === "Service" && document.metadata.name === "servo-k8s-multijob");
    assert.equal(service?.metadata.labels?.["networking.knative.dev/visibility"], "cluster-local");
    const policy = documents.find((document) => document.kind === "NetworkPolicy");
    assert.deepEqual(policy?.spec.podSelector, { matchLabels: { "serving.knative.dev/service": "servo-k8s-multijob" } });
    assert.deepEqual(policy?.spec.policyTypes, ["Ingress"]);
    const from = (policy?.spec.ingress as Array<{ from: unknown[] }>).flatMap((rule) => rule.from);
    assert.deepEqual(from, [
      { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "knative-serving" } }, podSelector: { matchLabels: { app: "activator" } } },
      { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "knative-serving" } }, podSelector: { matchLabels: { app: "autoscaler" } } },
      { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kourier-system" } } },
      { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
    ]);
  });

  test("[1] OpenFaaS: the policy is for the function's pods in openfaas-fn and admits the gateway", async () => {
    const run = await manifests("--target", "openfaas", "--watch", "batch");
    const policy = parseAllDocuments(run.stdout).map((document) => document.toJS() as { kind: string; metadata: { namespace: string }; spec: { podSelector: unknown; ingress: Array<{ from: unknown[] }> } }).find((document) => document.kind === "NetworkPolicy");
    assert.equal(policy?.metadata.namespace, "openfaas-fn");
    assert.deepEqual(policy?.spec.podSelector, { matchLabels: { faas_function: "servo-k8s-multijob" } });
    assert.deepEqual(policy?.spec.ingress[0]?.from, [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "openfaas" } }, podSelector: { matchLabels: { app: "gateway" } } }]);
  });

  test("[1] --event-auth: the audience on every sink, in the function's environment, and the TokenReview RBAC", async () => {
    const run = await manifests("--watch", "batch", "--event-auth", "--broker");
    assert.equal(run.code, 0, run.stderr);
    const documents = parseAllDocuments(run.stdout).map((document) => document.toJS() as Record<string, any>);
    const audience = "serving.knative.dev/service/optune-servo/servo-k8s-multijob";
    const service = documents.find((document) => document.kind === "Service" && document.apiVersion === "serving.knative.dev/v1");
    assert.deepEqual(service?.spec.template.spec.containers[0].env.find((entry: { name: string }) => entry.name === "OPTUNE_EVENT_AUDIENCE"), { name: "OPTUNE_EVENT_AUDIENCE", value: audience });
    assert.equal(documents.find((document) => document.kind === "PingSource")?.spec.sink.audience, audience);
    assert.equal(documents.find((document) => document.kind === "Trigger")?.spec.subscriber.audience, audience);
    assert.deepEqual(documents.find((document) => document.kind === "ClusterRole")?.rules, [{ apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] }]);
    assert.deepEqual(documents.find((document) => document.kind === "ClusterRoleBinding")?.subjects, [{ kind: "ServiceAccount", name: "servo-k8s-multijob", namespace: "optune-servo" }]);
    assert.match(run.stdout, /authentication-oidc: enabled/);
  });

  test("[11] --target openfaas --watch openfaas-fn is refused: it would watch its own pods and every other function's", async () => {
    const run = await manifests("--target", "openfaas", "--watch", "openfaas-fn");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--watch openfaas-fn/);
  });

  for (const [flag, namespace] of [["--namespace", "kube-system"], ["--namespace", "knative-eventing"], ["--namespace", "monitoring"], ["--namespace", "default"], ["--watch", "kube-system"], ["--watch", "knative-serving"]] as const) {
    test(`[12] ${flag} ${namespace} is refused: a shared namespace`, async () => {
      const run = await manifests(flag, namespace, ...(flag === "--namespace" ? ["--watch", "batch"] : []));
      assert.equal(run.code, 2, run.stdout.slice(0, 200));
      assert.equal(run.stdout, "");
    });
  }

  test("[10] the app-id condition is a has() expression with an escaped CEL string literal", () => {
    for (const name of ["JOBID", "it's", 'a"b', "back\\slash", "x') || true || ('"]) {
      const expression = appIdCondition(name);
      assert.ok(expression.startsWith("object.spec.containers.exists(c, has(c.env) && c.env.exists(e, e.name == "), expression);
      assert.ok(expression.endsWith("))"), expression);
      // For printable text, CEL's double-quoted escapes are JSON's: the literal reads back as the name.
      const literal = expression.slice(expression.lastIndexOf("== ") + 3, -2);
      assert.equal(JSON.parse(literal), name);
      assert.equal(celString(name), literal);
      assert.ok(!expression.includes("?"), "no optional types: 1.28 does not compile them in a new expression");
    }
  });
});

describe("[14] invoke --to", () => {
  test("a redirect is reported, not followed: the pod is not posted to the other server", async () => {
    let elsewhere = 0;
    const other = http.createServer((request, response) => {
      elsewhere++;
      request.resume();
      response.end("{}");
    });
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    const redirecting = http.createServer((request, response) => {
      request.resume();
      response.writeHead(307, { location: `http://user:pass@127.0.0.1:${(other.address() as AddressInfo).port}/` });
      response.end();
    });
    await new Promise<void>((resolve) => redirecting.listen(0, "127.0.0.1", resolve));
    try {
      const run = await runCli(["invoke", "--to", `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}/`, "example/events/01-succeeded-job.json"]);
      assert.equal(run.code, 1);
      assert.equal(elsewhere, 0);
      assert.match(run.stderr, /HTTP 307: a redirect to "http:\/\/\*\*\*@127\.0\.0\.1:\d+\/", not followed/);
      assert.ok(!run.stderr.includes("pass"));
    } finally {
      other.close();
      redirecting.close();
    }
  });

  test("a URL with user:password@ is refused, and the password is never printed", async () => {
    const run = await runCli(["invoke", "--to", "http://admin:s3cr3t@127.0.0.1:9/", "example/events/01-succeeded-job.json"]);
    assert.equal(run.code, 2);
    assert.ok(!`${run.stdout}${run.stderr}`.includes("s3cr3t"));
    assert.match(run.stderr, /--to must not hold a user:password@ part/);
  });
});

describe("[10] TokenReview slots: tokens that cannot be ours do not take them", () => {
  const AUDIENCE = "serving.knative.dev/service/optune-servo/servo-k8s-multijob";
  const SOURCE = "system:serviceaccount:batch:job-pods-oidc-sources.knative.dev-apiserversource";
  const VALID = serviceAccountToken({ sub: SOURCE, aud: [AUDIENCE] });
  /** The API server: accepts VALID, and takes forever to refuse anything else (every slot it is asked about stays taken). */
  const slowReviewer = (asked: string[] = []) => ({
    review: (token: string) => {
      asked.push(token);
      return token === VALID ? Promise.resolve({ authenticated: true as const, user: SOURCE, audiences: [AUDIENCE] }) : new Promise<never>(() => {});
    },
  });

  test("40 requests with random tokens in flight, then a source's valid token is still accepted", async () => {
    const authenticate = createEventAuthenticator({ audience: AUDIENCE, senders: new Set([SOURCE]), reviewer: slowReviewer() });
    const random = () => randomBytes(1 + Math.floor(Math.random() * 200)).toString("base64url");
    for (let i = 0; i < 40; i++) void authenticate(`Bearer ${i % 2 === 0 ? random() : `eyJ${random()}.${random()}.${random()}`}x`);
    assert.deepEqual(await authenticate(`Bearer ${VALID}`), { ok: true, user: SOURCE });
  });

  for (const [label, token, reason] of [
    ["a token that is not a JWT", "not-a-json-web-token-at-all", /not a ServiceAccount token/],
    ["a JWT for another audience", serviceAccountToken({ sub: SOURCE, aud: ["somewhere-else"] }), /not for this function's audience/],
    ["a JWT that expired an hour ago", serviceAccountToken({ sub: SOURCE, aud: [AUDIENCE], exp: Math.floor(Date.now() / 1000) - 3600 }), /expired/],
    ["a JWT of another ServiceAccount", serviceAccountToken({ sub: "system:serviceaccount:batch:default", aud: [AUDIENCE] }), /not one of the senders/],
  ] as const) {
    test(`${label}: 401 without asking the API server`, async () => {
      const asked: string[] = [];
      const authenticate = createEventAuthenticator({ audience: AUDIENCE, senders: new Set([SOURCE]), reviewer: slowReviewer(asked) });
      const result = await authenticate(`Bearer ${token}`);
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.status, 401);
      assert.match(!result.ok ? result.reason : "", reason);
      assert.deepEqual(asked, []);
    });
  }

  test("a JWT that claims all a source's token does: the API server is asked (the claims are not proof)", async () => {
    const asked: string[] = [];
    const forged = serviceAccountToken({ sub: SOURCE, aud: [AUDIENCE] });
    const authenticate = createEventAuthenticator({ audience: AUDIENCE, senders: new Set([SOURCE]), reviewer: slowReviewer(asked), maxReviews: 1 });
    void authenticate(`Bearer ${forged}`);
    assert.deepEqual(asked, [forged]);
  });
});
