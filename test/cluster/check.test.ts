// `servo-k8s-multijob check` against a real kube-apiserver: the real CRDs of Knative Serving and
// Eventing and cert-manager, the output of `manifests --webhook` applied with strict field
// validation, the controllers' part (status conditions, replicas, the
// cert-manager Secret and the injected caBundle) written by the test. A correct installation
// passes; each thing broken afterwards is a named ✖ or ‼ with what to do.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generate } from "selfsigned";
import { manifests, type ManifestOptions, type Release } from "../../handler/deploy/manifests.js";
import { TEST_OPTIONS } from "../support/manifest-variants.js";
import { startReceiver, type Receiver } from "../../handler/demo/optune-stand-in.js";
import { REPOSITORY, runCli } from "../support/cli.js";
import { createAll, startRealApiServer, type Document, type RealApiServer } from "./apiserver.js";
import { skipUnlessInstalled } from "./components.js";
import { applyCrds } from "./crds.js";

const skip = skipUnlessInstalled();

const WATCHED = ["batch", "etl"];
const OPTIONS: ManifestOptions & Release = { ...TEST_OPTIONS, watch: WATCHED, account: "acme", webhook: true };
const FLAGS = ["--watch", WATCHED.join(","), "--webhook"];
const MERGE = { contentType: "application/merge-patch+json" };
const VERSION = (JSON.parse(readFileSync(join(REPOSITORY, "package.json"), "utf8")) as { version: string }).version;
/** The Knative Service's version label, as `manifests` writes it (or `null` to remove it). */
const versionLabel = (version: string | null) => ({ metadata: { labels: { "app.kubernetes.io/version": version } } });

const withOptuneUrl = (service: object, url: string) => {
  const copy = structuredClone(service) as { spec: { template: { spec: { containers: Array<{ env: object[] }> } } } };
  copy.spec.template.spec.containers[0]!.env.push({ name: "OPTUNE_URL", value: url });
  return copy;
};
const conditions = (...types: string[]) => ({ status: { conditions: types.map((type) => ({ type, status: "True" })) } });
const KNATIVE_PATHS: Record<string, string> = { Service: "serving.knative.dev/v1/namespaces/{ns}/services", PingSource: "sources.knative.dev/v1/namespaces/{ns}/pingsources", ApiServerSource: "sources.knative.dev/v1/namespaces/{ns}/apiserversources" };

describe("servo-k8s-multijob check, against a real kube-apiserver", { skip }, () => {
  let server: RealApiServer;
  let kubeconfig: string;
  let receiver: Receiver;
  const check = (...extra: string[]) => runCli(["check", ...FLAGS, ...extra], { KUBECONFIG: kubeconfig, OPTUNE_ACCOUNT: "acme", OPTUNE_AUTH_TOKEN: "t0k" });

  before(async () => {
    receiver = await startReceiver();
    server = await startRealApiServer();
    kubeconfig = server.kubeconfig();
    // The real CRDs of Knative Serving and Eventing and cert-manager, from their Go modules.
    await applyCrds(server, ["Knative Serving", "Knative Eventing", "cert-manager"]);
    for (const namespace of WATCHED) await server.createNamespace(namespace);
    // The function sends to the local Optune stand-in (OPTUNE_URL in its environment, which check reads).
    const documents = manifests(OPTIONS).map(({ manifest }) => (manifest.kind === "Service" && manifest.apiVersion.includes("knative.dev") ? withOptuneUrl(manifest, receiver.template) : manifest) as unknown as Document);
    assert.deepEqual(await createAll(server, documents), []);
    // Knative's controllers' part: the objects Ready.
    for (const document of documents) {
      const knative = document.apiVersion.includes("knative.dev") ? KNATIVE_PATHS[document.kind] : undefined;
      if (knative === undefined) continue;
      if (document.kind === "Service") assert.equal((await server.request("PATCH", `/apis/${knative.replace("{ns}", document.metadata.namespace!)}/${document.metadata.name}`, versionLabel(VERSION), MERGE)).status, 200);
      const status = document.kind === "ApiServerSource" ? conditions("Ready", "SufficientPermissions", "SinkProvided") : conditions("Ready");
      const answer = await server.request("PATCH", `/apis/${knative.replace("{ns}", document.metadata.namespace!)}/${document.metadata.name}/status`, status, MERGE);
      assert.equal(answer.status, 200, `${document.kind} status: ${JSON.stringify(answer.body).slice(0, 300)}`);
    }
    await server.request("POST", "/api/v1/namespaces/optune-servo/secrets", { apiVersion: "v1", kind: "Secret", metadata: { name: "optune-auth-token" }, data: { token: Buffer.from("t0k").toString("base64") } });
    // cert-manager's part: the serving certificate in its Secret, and its CA injected into the configuration.
    const pems = await generate([{ name: "commonName", value: "servo-k8s-multijob-webhook.optune-servo.svc" }], { keySize: 2048, extensions: [{ name: "subjectAltName", altNames: [{ type: 2, value: "servo-k8s-multijob-webhook.optune-servo.svc" }] }] });
    await server.request("POST", "/api/v1/namespaces/optune-servo/secrets", { apiVersion: "v1", kind: "Secret", metadata: { name: "servo-k8s-multijob-webhook-tls" }, type: "kubernetes.io/tls", data: { "tls.crt": Buffer.from(pems.cert).toString("base64"), "tls.key": Buffer.from(pems.private).toString("base64") } });
    const configuration = (await server.request("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/servo-k8s-multijob")).body;
    configuration.webhooks[0].clientConfig.caBundle = Buffer.from(pems.cert).toString("base64");
    assert.equal((await server.request("PUT", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/servo-k8s-multijob", configuration)).status, 200);
    // The Deployment controller's part.
    await server.request("PATCH", "/apis/apps/v1/namespaces/optune-servo/deployments/servo-k8s-multijob-webhook/status", { status: { replicas: 2, readyReplicas: 2, availableReplicas: 2 } }, MERGE);
  });
  after(async () => {
    await server?.stop();
    await receiver?.close();
  });

  test("a correct installation: every check passes, exit 0; --optune says HELLO", async () => {
    const run = await check("--optune");
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.ok(run.stdout.startsWith(`kubernetes-api\n--------------\n✔ can reach the Kubernetes API (${server.version})\n`), run.stdout);
    for (const line of [
      "✔ servo-k8s-multijob may get, list, patch pods in batch",
      "✔ servo-k8s-multijob-source may get, list, watch pods in etl",
      "✔ servo-k8s-multijob-webhook may list, watch limitranges in batch",
      "✔ the ApiServerSource etl/job-pods is Ready (SufficientPermissions, SinkProvided)",
      "✔ the Secret optune-servo/optune-auth-token holds the Optune token (key token)",
      "✔ its caBundle verifies the serving certificate",
      "✔ the certificate is for servo-k8s-multijob-webhook.optune-servo.svc",
      "✔ its Deployment has 2 of 2 replicas available",
      "✔ 127.0.0.1:",
      "✔ Optune accepted a HELLO with your account and token",
      "✔ its version is within the tested range (v1.28 to v1.37)",
      "✔ cert-manager's API (cert-manager.io/v1) is installed",
      `✔ the installed version is this command's (${VERSION})`,
    ]) assert.ok(run.stdout.includes(line), `missing: ${line}\n${run.stdout}`);
    assert.match(run.stdout, /Status check results are ✔\n$/);
    const posts = () => receiver.requests.filter((request) => request.method === "POST");
    assert.deepEqual(posts().map((request) => [request.path, (request.body as { event: string }).event, request.headers.authorization]), [["/metrics/acme/_global_/servo", "HELLO", "Bearer t0k"]]);
    const json = JSON.parse((await check("-o", "json")).stdout) as { success: boolean; categories: Array<{ name: string }> };
    assert.equal(json.success, true);
    assert.deepEqual(json.categories.map((category) => category.name), ["kubernetes-api", "permissions", "event delivery", "admission webhook", "version", "recent work", "optune"]);
    assert.equal(posts().length, 1, "without --optune nothing is sent to Optune (its origin is only reached with a GET)");
  });

  test("the installed version: no label is a warning that says so; another version is named, with the upgrade command", async () => {
    const service = "/apis/serving.knative.dev/v1/namespaces/optune-servo/services/servo-k8s-multijob";
    try {
      assert.equal((await server.request("PATCH", service, versionLabel(null), MERGE)).status, 200);
      const unlabelled = await check();
      assert.equal(unlabelled.code, 0, unlabelled.stdout);
      assert.ok(unlabelled.stdout.includes(`‼ the installed version is this command's (${VERSION})\n    the Knative Service optune-servo/servo-k8s-multijob has no label app.kubernetes.io/version`), unlabelled.stdout);
      await server.request("PATCH", service, versionLabel("0.0.1"), MERGE);
      const older = await check();
      assert.ok(older.stdout.includes(`    the Knative Service optune-servo/servo-k8s-multijob says 0.0.1: to upgrade, apply the output of \`servo-k8s-multijob manifests --watch batch,etl --webhook\``), older.stdout);
    } finally {
      await server.request("PATCH", service, versionLabel(VERSION), MERGE);
    }
  });

  test("--pre on this cluster, as its admin: every prerequisite passes, exit 0, and nothing installed is judged", async () => {
    const run = await check("--pre");
    assert.equal(run.code, 0, run.stdout + run.stderr);
    for (const line of [
      "✔ its version is within the tested range (v1.28 to v1.37)",
      "✔ Knative Serving's API (serving.knative.dev/v1) is installed",
      "✔ cert-manager's API (cert-manager.io/v1) is installed",
      "pre-install\n-----------\n",
      "✔ you may create namespaces in the cluster",
      "✔ you may create roles.rbac.authorization.k8s.io in etl",
      "✔ you may create mutatingwebhookconfigurations.admissionregistration.k8s.io in the cluster",
      "✔ you may create apiserversources.sources.knative.dev in batch",
    ]) assert.ok(run.stdout.includes(line), `missing: ${line}\n${run.stdout}`);
    assert.ok(!run.stdout.includes("permissions\n"), run.stdout);
  });

  test("a broken installation: each fault a named ✖ with what to do, exit 1", async () => {
    // A Role without patch, a source whose sink never resolved, a caBundle never injected, no webhook replica, and a finished job nobody reported.
    await server.request("PATCH", "/apis/rbac.authorization.k8s.io/v1/namespaces/etl/roles/servo-k8s-multijob", { rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }] }, MERGE);
    await server.request("PATCH", "/apis/sources.knative.dev/v1/namespaces/batch/apiserversources/job-pods/status", { status: { conditions: [{ type: "Ready", status: "False", reason: "NotFound", message: "sink not found" }, { type: "SinkProvided", status: "False" }] } }, MERGE);
    const configuration = (await server.request("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/servo-k8s-multijob")).body;
    delete configuration.webhooks[0].clientConfig.caBundle;
    await server.request("PUT", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/servo-k8s-multijob", configuration);
    await server.request("PATCH", "/apis/apps/v1/namespaces/optune-servo/deployments/servo-k8s-multijob-webhook/status", { status: { availableReplicas: 0, readyReplicas: 0 } }, MERGE);
    const finished = new Date(Date.now() - 20 * 60_000).toISOString().replace(/\.\d+Z$/, "Z");
    await server.request("POST", "/api/v1/namespaces/batch/pods", { apiVersion: "v1", kind: "Pod", metadata: { name: "forgotten-job" }, spec: { containers: [{ name: "worker", image: "worker:1", env: [{ name: "JOBID", value: "resize-images" }] }] } });
    await server.request("PATCH", "/api/v1/namespaces/batch/pods/forgotten-job/status", { status: { phase: "Succeeded", containerStatuses: [{ name: "worker", ready: false, restartCount: 0, image: "worker:1", imageID: "", state: { terminated: { exitCode: 0, startedAt: finished, finishedAt: finished } } }] } }, MERGE);

    const run = await check();
    assert.equal(run.code, 1, run.stdout);
    for (const line of [
      "✖ servo-k8s-multijob may get, list, patch pods in etl\n    missing rule in etl for system:serviceaccount:optune-servo:servo-k8s-multijob: apiGroups [\"\"], resources [pods], verbs [patch]; `servo-k8s-multijob manifests --watch batch,etl --webhook` writes it",
      "✖ the ApiServerSource batch/job-pods is Ready (SufficientPermissions, SinkProvided)\n    Ready is False (NotFound: sink not found)",
      "✖ its caBundle verifies the serving certificate\n    the caBundle was never injected or is stale",
      "✖ its Deployment has replicas available",
      "‼ finished jobs in batch in the last hour: 0 of 1 reported\n    unreported for more than a sweep interval: forgotten-job",
    ]) assert.ok(run.stdout.includes(line), `missing: ${line}\n${run.stdout}`);
    assert.match(run.stdout, /Status check results are ✖\n$/);
  });

  test("no API server at the kubeconfig's address: one ✖ that says so, exit 1", async () => {
    const dead = server.kubeconfig().replace(/^/, "");
    const text = (await import("node:fs")).readFileSync(dead, "utf8").replace(/server: https:\/\/127\.0\.0\.1:\d+/, "server: https://127.0.0.1:9");
    (await import("node:fs")).writeFileSync(dead, text);
    const run = await runCli(["check"], { KUBECONFIG: dead });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /✖ can reach the Kubernetes API\n    cannot reach it: .*ECONNREFUSED/);
  });
});

describe("servo-k8s-multijob check --pre, on a cluster without Knative or cert-manager", { skip }, () => {
  let server: RealApiServer;
  before(async () => {
    server = await startRealApiServer();
  });
  after(async () => {
    await server?.stop();
  });

  test("the APIs these flags need are each a ✖ that says what to install, exit 1", async () => {
    const run = await runCli(["check", "--pre", ...FLAGS], { KUBECONFIG: server.kubeconfig() });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    for (const line of [
      `✔ can reach the Kubernetes API (${server.version})\n✔ its version is within the tested range (v1.28 to v1.37)`,
      "✖ Knative Serving's API (serving.knative.dev/v1) is installed\n    install Knative Serving",
      "✖ Knative Eventing's sources API (sources.knative.dev/v1) is installed\n    install Knative Eventing",
      "✖ cert-manager's API (cert-manager.io/v1) is installed\n    install cert-manager",
      "✔ you may create namespaces in the cluster",
    ]) assert.ok(run.stdout.includes(line), `missing: ${line}\n${run.stdout}`);
  });

  test("a user who may not create what manifests writes: each denied create a ✖ with the full install command for an administrator", async () => {
    await server.createNamespace("team");
    await server.request("POST", "/api/v1/namespaces/team/serviceaccounts", { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "developer" } });
    const token = await server.serviceAccountToken("team", "developer");
    const run = await runCli(["check", "--pre", ...FLAGS], { KUBECONFIG: server.kubeconfig(token, "developer") });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.ok(run.stdout.includes("✖ you may create namespaces in the cluster\n    ask your cluster's administrator to apply the output of `servo-k8s-multijob manifests --watch batch,etl --webhook`"), run.stdout);
    assert.ok(run.stdout.includes("✖ you may create rolebindings.rbac.authorization.k8s.io in batch"), run.stdout);
  });
});

describe("servo-k8s-multijob check, on a cluster without Knative", { skip }, () => {
  test("the missing APIs are each a ✖ that says what to install, exit 1", async () => {
    const server = await startRealApiServer();
    try {
      const run = await runCli(["check", ...FLAGS], { KUBECONFIG: server.kubeconfig(), OPTUNE_ACCOUNT: "acme", OPTUNE_AUTH_TOKEN: "t0k" });
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.ok(run.stdout.includes(`✔ can reach the Kubernetes API (${server.version})`), run.stdout);
      for (const line of [
        "✖ Knative Serving's API (serving.knative.dev/v1) is installed\n    install Knative Serving",
        "✖ Knative Eventing's sources API (sources.knative.dev/v1) is installed\n    install Knative Eventing",
      ]) assert.ok(run.stdout.includes(line), `missing: ${line}\n${run.stdout}`);
    } finally {
      await server.stop();
    }
  });
});
