// The checks of `servo-k8s-multijob check`, as pure functions of literal facts (the real-tier test
// runs them against a real API server): each fault is named, and says what to do. Then the wire,
// against fake HTTP answers for the faults a real API server does not make (cut off, dripping).
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { accessQuestions, failed, installQuestions, runChecks, TESTED_KUBERNETES, type CheckOptions, type ClusterFacts } from "../handler/check/checks.js";
import { apiUrl, httpApi } from "../handler/check/connect.js";
import { MAX_TEXT, renderJson, renderText } from "../handler/check/report.js";
import { unprintable } from "../handler/edges/printable.js";
import { startReceiver } from "../handler/demo/optune-stand-in.js";
import { REPOSITORY, runCli } from "./support/cli.js";
import { scratchDir } from "./support/scratch.js";
import { PACKAGE_VERSION } from "./support/manifest-variants.js";
import { DEFAULT_OPTIONS } from "../handler/deploy/manifests.js";

const NOW = Date.parse("2026-12-01T12:00:00Z");
const OPTIONS: CheckOptions = { install: { ...DEFAULT_OPTIONS, version: PACKAGE_VERSION, namespace: "optune-servo", watch: ["batch"], target: "knative", webhook: false }, now: NOW };
const ready = (...types: string[]) => ({ found: { spec: {}, status: { conditions: types.map((type) => ({ type, status: "True" })) } } });
const source = (spec: object) => ({ found: { spec, status: { conditions: ["Ready", "SufficientPermissions", "SinkProvided"].map((type) => ({ type, status: "True" })) } } });
const SINK = { ref: { apiVersion: "serving.knative.dev/v1", kind: "Service", name: "servo-k8s-multijob", namespace: "optune-servo" } };
const healthy = (): ClusterFacts => ({
  server: { version: "v1.31.0" },
  apis: ["serving.knative.dev/v1", "sources.knative.dev/v1", "cert-manager.io/v1"],
  access: accessQuestions(OPTIONS.install).map((question) => ({ ...question, allowed: true })),
  service: ready("Ready"),
  pingSource: ready("Ready"),
  sources: { batch: source({ mode: "Resource", sink: SINK }) },
  tokenSecret: { name: "optune-auth-token", key: "token", keys: ["token"] },
  pods: { batch: [] },
});
const find = (facts: ClusterFacts, name: RegExp, options = OPTIONS) => runChecks(facts, options).flatMap((category) => category.checks).find((check) => name.test(check.name));

describe("check, pure", () => {
  test("a healthy installation: nothing fails", () => {
    assert.equal(failed(runChecks(healthy(), OPTIONS)), false);
    assert.match(renderText(runChecks(healthy(), OPTIONS)), /Status check results are ✔\n$/);
    assert.equal(JSON.parse(renderJson(runChecks(healthy(), OPTIONS))).success, true);
  });

  test("an unreachable API server: one failure, and nothing else is judged", () => {
    const categories = runChecks({ ...healthy(), server: { error: "cannot reach it: ECONNREFUSED" } }, OPTIONS);
    assert.deepEqual(categories.map((category) => category.name), ["kubernetes-api"]);
    assert.equal(categories[0]!.checks[0]!.status, "failed");
  });

  test("Knative not installed: named, with where to get it", () => {
    assert.match(find({ ...healthy(), apis: [] }, /Knative Serving/)?.hint ?? "", /install Knative Serving/);
  });

  test("a source in Reference mode is a warning; a sink elsewhere, or no source, a failure", () => {
    assert.equal(find({ ...healthy(), sources: { batch: source({ sink: SINK }) } }, /whole Pods/)?.status, "warning");
    assert.equal(find({ ...healthy(), sources: { batch: source({ mode: "Resource", sink: { ref: { kind: "Service", name: "other" } } }) } }, /sends to the function/)?.status, "failed");
    assert.equal(find({ ...healthy(), sources: {} }, /job-pods exists/)?.status, "failed");
  });

  test("the token Secret missing, or without the key the function reads", () => {
    assert.match(find({ ...healthy(), tokenSecret: { name: "optune-auth-token", key: "token", keys: undefined } }, /holds the Optune token/)?.hint ?? "", /kubectl -n optune-servo create secret generic optune-auth-token/);
    assert.match(find({ ...healthy(), tokenSecret: { name: "optune-auth-token", key: "token", keys: ["TOKEN"] } }, /holds the Optune token/)?.hint ?? "", /no key token \(only TOKEN\)/);
  });

  test("a permission the API server denies: the exact missing rule", () => {
    const access = accessQuestions(OPTIONS.install).map((question) => ({ ...question, allowed: question.verb !== "patch" }));
    assert.match(find({ ...healthy(), access }, /may get, list, patch pods in batch/)?.hint ?? "", /verbs \[patch\]/);
  });

  test("a certificate expiring within 30 days is a warning; the caBundle not verifying it, a failure", () => {
    const webhook = (notAfter: number, verifies = true) => ({ configuration: { found: { webhooks: [{ failurePolicy: "Ignore" }] } }, deployment: { found: { spec: { replicas: 2 }, status: { availableReplicas: 2 } } }, certificate: { verifiesWithCaBundle: verifies, dnsNames: ["servo-k8s-multijob-webhook.optune-servo.svc"], notAfter } });
    const options = { ...OPTIONS, install: { ...OPTIONS.install, webhook: true } };
    assert.equal(find({ ...healthy(), webhook: webhook(NOW + 10 * 86_400_000) }, /more days/, options)?.status, "warning");
    assert.equal(find({ ...healthy(), webhook: webhook(NOW + 90 * 86_400_000, false) }, /caBundle/, options)?.status, "failed");
  });

  test("a finished job pod unreported for more than a sweep interval is named; other pods do not count", () => {
    const pod = (name: string, jobId: string | undefined, finishedMinutesAgo: number, claim?: string) => ({
      metadata: { name, namespace: "batch", ...(claim === undefined ? {} : { annotations: { "optune.ai/measurement": JSON.stringify({ state: claim }) } }) },
      spec: { containers: [{ name: "worker", env: jobId === undefined ? [] : [{ name: "JOBID", value: jobId }] }] },
      status: { phase: "Succeeded", containerStatuses: [{ name: "worker", state: { terminated: { finishedAt: new Date(NOW - finishedMinutesAgo * 60_000).toISOString() } } }] },
    });
    const facts = { ...healthy(), pods: { batch: [pod("done", "etl", 30, "sent"), pod("late", "etl", 20), pod("just-now", "etl", 1), pod("not-a-job", undefined, 20)] } };
    const check = find(facts, /finished jobs in batch/);
    assert.equal(check?.name, "finished jobs in batch in the last hour: 1 of 3 reported");
    assert.match(check?.hint ?? "", /unreported for more than a sweep interval: late;/);
  });

  test("held pods: how many, the oldest, and why it waits; a warning once it waited longer than a sweep interval", () => {
    const held = (name: string, deletedMinutesAgo: number, claim?: object) => ({
      metadata: { name, namespace: "batch", finalizers: ["optune.ai/measurement"], deletionTimestamp: new Date(NOW - deletedMinutesAgo * 60_000).toISOString(), ...(claim === undefined ? {} : { annotations: { "optune.ai/measurement": JSON.stringify(claim) } }) },
      spec: { containers: [{ name: "worker", env: [{ name: "JOBID", value: "etl" }] }] },
      status: { phase: "Succeeded", containerStatuses: [{ name: "worker", state: { terminated: { finishedAt: new Date(NOW - 30 * 60_000).toISOString() } } }] },
    });
    assert.equal(find({ ...healthy(), pods: { batch: [] } }, /held/)?.name, "no deleted job pod in batch is held for its MEASUREMENT");
    const fresh = find({ ...healthy(), pods: { batch: [held("new", 1)] } }, /held/);
    assert.deepEqual([fresh?.status, fresh?.name], ["ok", "1 deleted job pod in batch held for their MEASUREMENT (the finalizer optune.ai/measurement), the oldest for 1 min (not claimed yet: is the function running, and does its sweep run?)"]);
    const retryAt = new Date(NOW + 60_000).toISOString();
    const stuck = find({ ...healthy(), pods: { batch: [held("new", 1), held("old", 40, { state: "released", instance: "a", at: retryAt, failures: 6, retryAt })] } }, /held/);
    assert.equal(stuck?.status, "warning");
    assert.equal(stuck?.name, "2 deleted job pods in batch held for their MEASUREMENT (the finalizer optune.ai/measurement), the oldest for 40 min");
    assert.equal(stuck?.hint, `old: 6 deliveries to Optune failed, the next is due at ${retryAt}; held pods are let go after OPTUNE_HOLD (24 h), or now with \`servo-k8s-multijob release --namespace batch\``);
  });

  test("the sweep hint runs it over the watched namespaces, with the account given", () => {
    const pod = { metadata: { name: "late", namespace: "batch" }, spec: { containers: [{ name: "worker", env: [{ name: "JOBID", value: "etl" }] }] }, status: { phase: "Succeeded", containerStatuses: [{ name: "worker", state: { terminated: { finishedAt: new Date(NOW - 20 * 60_000).toISOString() } } }] } };
    const options = { ...OPTIONS, install: { ...OPTIONS.install, watch: ["batch", "etl"], account: "acme" } };
    assert.match(find({ ...healthy(), pods: { batch: [pod] } }, /finished jobs in batch/, options)?.hint ?? "", /run `POD_NAMESPACES=batch,etl OPTUNE_ACCOUNT=acme servo-k8s-multijob sweep` \(with OPTUNE_AUTH_TOKEN set\)/);
  });
});

describe("check, pure: what it says about versions, flags and remote text", () => {
  const WIDE: CheckOptions = { ...OPTIONS, install: { ...OPTIONS.install, watch: ["batch", "etl"], webhook: true, namespace: "servo" } };

  test("a fix hint repeats every flag that shapes the install, never a bare `manifests`", () => {
    const hint = find({ ...healthy(), sources: {} }, /job-pods exists/, WIDE)?.hint ?? "";
    assert.match(hint, /`servo-k8s-multijob manifests --namespace servo --watch batch,etl --webhook`/);
    const service = find({ ...healthy(), service: { absent: true } }, /Knative Service/, WIDE)?.hint ?? "";
    assert.match(service, /--namespace servo --watch batch,etl --webhook`/);
  });

  test("the API list unanswered: one named failure, not a crash", () => {
    const check = find({ ...healthy(), apis: { error: "no whole answer to GET /apis within 5000 ms" } }, /list the API server's APIs/);
    assert.equal(check?.status, "failed");
    assert.match(check?.hint ?? "", /no whole answer to GET \/apis/);
  });

  test("Kubernetes within the tested minors passes; older fails; newer is a warning", () => {
    const at = (version: string) => find({ ...healthy(), server: { version } }, /tested range/);
    assert.equal(at(`v${TESTED_KUBERNETES.oldest}.0`)?.status, "ok");
    assert.equal(at(`v${TESTED_KUBERNETES.newest}.9-gke.1`)?.status, "ok");
    assert.equal(at("v1.27.16")?.status, "failed");
    assert.equal(at("v1.38.0")?.status, "warning");
  });

  test("the tested range is the one the real-cluster tier runs (test/cluster/components.env)", () => {
    const env = readFileSync(join(REPOSITORY, "test/cluster/components.env"), "utf8");
    const minor = (name: string) => new RegExp(`^${name}=v(\\d+\\.\\d+)\\.`, "m").exec(env)?.[1];
    assert.deepEqual({ oldest: minor("KUBERNETES_OLDEST"), newest: minor("KUBERNETES_NEWEST") }, { ...TESTED_KUBERNETES });
  });

  test("--pre needs the APIs of the flags given: cert-manager only with --webhook, Knative Serving only for Knative", () => {
    const pre = (options: CheckOptions) => runChecks({ ...healthy(), apis: ["sources.knative.dev/v1", "eventing.knative.dev/v1"], prerequisites: { access: [] } }, { ...options, pre: true });
    const names = (options: CheckOptions) => pre(options).flatMap((category) => category.checks).filter((check) => check.status === "failed").map((check) => check.name);
    assert.deepEqual(names(OPTIONS), ["Knative Serving's API (serving.knative.dev/v1) is installed"]);
    assert.deepEqual(names(WIDE), ["Knative Serving's API (serving.knative.dev/v1) is installed", "cert-manager's API (cert-manager.io/v1) is installed"]);
    assert.deepEqual(names({ ...OPTIONS, install: { ...OPTIONS.install, target: "openfaas" } }), []);
    assert.deepEqual(pre(OPTIONS).map((category) => category.name), ["kubernetes-api", "pre-install"], "nothing installed is judged before installing");
  });

  test("--pre asks create for every kind of object manifests writes, where it writes it", () => {
    const questions = installQuestions(WIDE.install);
    for (const expected of [
      { verb: "create", group: "", resource: "namespaces", namespace: "" },
      { verb: "create", group: "rbac.authorization.k8s.io", resource: "roles", namespace: "etl" },
      { verb: "create", group: "sources.knative.dev", resource: "apiserversources", namespace: "batch" },
      { verb: "create", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", namespace: "" },
      { verb: "create", group: "networking.k8s.io", resource: "networkpolicies", namespace: "servo" },
    ]) assert.ok(questions.some((question) => JSON.stringify(question) === JSON.stringify(expected)), JSON.stringify(expected));
  });

  test("--pre: a create you may not do fails, with the install command to hand to an administrator", () => {
    const access = installQuestions(WIDE.install).map((question) => ({ ...question, allowed: question.resource !== "mutatingwebhookconfigurations" }));
    const check = runChecks({ ...healthy(), prerequisites: { access } }, { ...WIDE, pre: true }).flatMap((category) => category.checks).find((item) => item.status === "failed");
    assert.equal(check?.name, "you may create mutatingwebhookconfigurations.admissionregistration.k8s.io in the cluster");
    assert.match(check?.hint ?? "", /`servo-k8s-multijob manifests --namespace servo --watch batch,etl --webhook`/);
  });

  test("--pre for OpenFaaS: its gateway's Service missing fails", () => {
    const options: CheckOptions = { ...OPTIONS, install: { ...OPTIONS.install, target: "openfaas" }, pre: true };
    assert.match(find({ ...healthy(), prerequisites: { access: [], openfaasGateway: { absent: true } } }, /OpenFaaS's gateway/, options)?.hint ?? "", /install OpenFaaS/);
  });

  test("the installed version, from the app.kubernetes.io/version label: the same passes, another is a warning naming both", () => {
    const labelled = (version: string) => ({ ...healthy(), service: { found: { ...ready("Ready").found, metadata: { labels: { "app.kubernetes.io/version": version } } } } });
    const options = { ...OPTIONS, cliVersion: "0.3.0" };
    assert.equal(find(labelled("0.3.0"), /installed version/, options)?.status, "ok");
    const older = find(labelled("0.2.0"), /installed version/, options);
    assert.equal(older?.status, "warning");
    assert.match(older?.hint ?? "", /the Knative Service optune-servo\/servo-k8s-multijob says 0\.2\.0: to upgrade, apply the output of `servo-k8s-multijob manifests --watch batch`/);
  });

  test("no version label on the installed objects: a warning that says so, not a failure", () => {
    const check = find(healthy(), /installed version/, { ...OPTIONS, cliVersion: "0.3.0" });
    assert.equal(check?.status, "warning");
    assert.match(check?.hint ?? "", /has no label app\.kubernetes\.io\/version/);
  });

  test("this environment's OPTUNE_URL differing from the function's is a warning naming both", () => {
    const optune = { url: "https://staging.optune.example/{acct}", resolves: true as const, answers: 200, functionUrl: "https://api.optune.example/{acct}" };
    assert.match(find({ ...healthy(), optune }, /same OPTUNE_URL/)?.hint ?? "", /sends to https:\/\/api\.optune\.example\/\{acct\}; these checks used https:\/\/staging/);
  });

  test("what the API server says is printed escaped, one line each, clipped", () => {
    const message = `\u001b]52;c;cm0gLXJmIH4=\u0007sink \u202egnp.exe\u2028next\u009b31m ${"x".repeat(200_000)}`;
    const facts = { ...healthy(), server: { version: "v1.31.0\u001b[2J" }, service: { found: { status: { conditions: [{ type: "Ready", status: "False", reason: "Bad\r\nline", message }] } } } };
    for (const output of [renderText(runChecks(facts, OPTIONS)), renderJson(runChecks(facts, OPTIONS))]) {
      for (const line of output.split("\n")) {
        assert.equal(unprintable(line), undefined, line.slice(0, 80));
        assert.ok(line.length <= MAX_TEXT + 40, `${line.length} characters`);
      }
    }
    assert.match(renderText(runChecks(facts, OPTIONS)), /Ready is False \(Bad\\u000D\\u000Aline: \\u001B\]52;c;cm0gLXJmIH4=\\u0007sink \\u202Egnp\.exe\\u2028next\\u009B31m x+…\); kubectl -n optune-servo describe ksvc servo-k8s-multijob$/m);
  });
});

describe("check, the wire (fake HTTP answers for what a real API server does not do)", () => {
  const hold: http.ServerResponse[] = [];
  let server: http.Server;
  let base: string;
  const LIMITS = { callTimeoutMs: 400, deadline: Number.MAX_SAFE_INTEGER };
  before(async () => {
    server = http.createServer((request, response) => {
      const path = (request.url ?? "").replace(/^\/k8s\/clusters\/c-1/, "");
      if (path === "/version" && !request.url!.startsWith("/k8s")) return response.writeHead(404).end();
      if (path === "/version") return response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ gitVersion: "v1.31.0" }));
      if (path === "/cut") {
        response.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
        response.write('{"kind":"APIGroupList","gro');
        return setTimeout(() => response.socket?.destroy(), 20);
      }
      if (path === "/drip") {
        response.writeHead(200, { "content-type": "application/json" });
        hold.push(response);
        const drip = setInterval(() => response.write(" "), 50);
        return response.on("close", () => clearInterval(drip));
      }
      response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    for (const response of hold) response.destroy();
    server.closeAllConnections();
    server.close();
  });

  test("the server URL's path is kept before the API path (Rancher's /k8s/clusters/<id>)", async () => {
    assert.equal(apiUrl("https://rancher.example/k8s/clusters/c-1/", "/apis?limit=1").href, "https://rancher.example/k8s/clusters/c-1/apis?limit=1");
    assert.equal((await httpApi(`${base}/k8s/clusters/c-1`, LIMITS).get("/version")).status, 200);
  });

  test("an answer cut off mid-body is an error, never an empty answer", async () => {
    await assert.rejects(httpApi(base, LIMITS).get("/cut"), /the answer to GET \/cut was cut off mid-body/);
  });

  test("an answer that drips is cut off at the call's deadline (a total, not an idle, timeout)", async () => {
    await assert.rejects(httpApi(base, LIMITS).get("/drip"), /no whole answer to GET \/drip within 400 ms/);
  });

  test("past the check's deadline nothing more is asked", async () => {
    await assert.rejects(httpApi(base, { callTimeoutMs: 400, deadline: Date.now() - 1 }).get("/version"), /not asked: the check's 30 s were over/);
  });

  /** `check` (--pre unless other flags are given) through a kubeconfig whose server answers /version and then answers /apis with `apis`. */
  async function checkWithApis(apis: (response: http.ServerResponse) => void, flags = ["--pre"], env: Record<string, string> = {}, prefix = "") {
    const proxy = http.createServer((request, response) => {
      if (!request.url!.startsWith(`${prefix}/`)) return response.writeHead(404).end();
      request.url = request.url!.slice(prefix.length);
      if (request.url === "/version") return response.writeHead(200).end(JSON.stringify({ gitVersion: "v1.31.0" }));
      if (request.url === "/apis") return apis(response);
      response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const kubeconfig = join(scratchDir("servo-check-"), "config");
      writeFileSync(kubeconfig, `apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${(proxy.address() as AddressInfo).port}${prefix}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\n`);
      return await runCli(["check", ...flags], { KUBECONFIG: kubeconfig, ...env });
    } finally {
      proxy.closeAllConnections();
      proxy.close();
    }
  }

  test("the command: an API list cut off mid-body is a named ✖ and exit 1, not silence and exit 0", async () => {
    const run = await checkWithApis((response) => {
      response.writeHead(200, { "content-length": "1000" });
      response.write('{"groups":[');
      setTimeout(() => response.socket?.destroy(), 20);
    });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /✖ can list the API server's APIs\n    the answer to GET \/apis was cut off mid-body/);
    assert.equal(run.stderr, "");
  });

  test("the command: an API list never answered (connection closed) is a named ✖ and exit 1, not a stack trace", async () => {
    const run = await checkWithApis((response) => response.socket?.destroy());
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /✖ can list the API server's APIs\n    socket hang up/);
    assert.equal(run.stderr, "");
  });

  test("the command: a kubeconfig server behind a path-based proxy is asked under that path", async () => {
    const run = await checkWithApis((response) => response.writeHead(200).end('{"groups":[{"versions":[{"groupVersion":"serving.knative.dev/v1"}]}]}'), ["--pre"], {}, "/k8s/clusters/c-1");
    assert.match(run.stdout, /✔ can reach the Kubernetes API \(v1\.31\.0\)\n/, run.stdout);
    assert.match(run.stdout, /✔ Knative Serving's API \(serving\.knative\.dev\/v1\) is installed/);
  });

  test("the command: --optune says HELLO to the OPTUNE_URL of this environment", async () => {
    const receiver = await startReceiver();
    try {
      const run = await checkWithApis((response) => response.writeHead(200).end('{"groups":[]}'), ["--target", "openfaas", "--optune"], { OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme", OPTUNE_AUTH_TOKEN: "t0k" });
      assert.match(run.stdout, /✔ Optune accepted a HELLO with your account and token/, run.stdout);
      assert.deepEqual(receiver.requests.filter((request) => request.method === "POST").map((request) => request.path), ["/metrics/acme/_global_/servo"]);
    } finally {
      await receiver.close();
    }
  });
});
