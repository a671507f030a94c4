// The Kubernetes edge, through the real @kubernetes/client-node against the fake API server.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { generate } from "selfsigned";
import { connectKubernetes, findKubeconfig, KubernetesError, plainKubeconfig, refusalReporter, type KubeconfigSource, type PodApi } from "../handler/edges/kubernetes.js";
import { createLogger } from "../handler/edges/log.js";
import { podAnnotation } from "../handler/jobs/pod.js";
import { finishedRun } from "../handler/measure/termination.js";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.js";
import { jobPod } from "./support/pods.js";
import { scratchDir } from "./support/scratch.js";

describe("finding the Kubernetes configuration", () => {
  const exists = (paths: string[]) => (path: string) => paths.includes(path);

  test("in a cluster: the service account", () => {
    const account = "/var/run/secrets/kubernetes.io/serviceaccount";
    assert.deepEqual(findKubeconfig({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "6443", HOME: "/h" }, exists([`${account}/token`])), { kind: "in-cluster", host: "10.96.0.1", port: "6443", account });
  });

  test("in a cluster without KUBERNETES_SERVICE_PORT: port 443", () => {
    assert.equal((findKubeconfig({ KUBERNETES_SERVICE_HOST: "10.96.0.1" }, exists(["/sa/token"]), "/sa") as { port: string }).port, "443");
  });

  test("else the files in KUBECONFIG that exist", () => {
    assert.deepEqual(findKubeconfig({ KUBECONFIG: "/a:/b:/c", HOME: "/h" }, exists(["/a", "/c"])), { kind: "files", paths: ["/a", "/c"] });
  });

  test("else ~/.kube/config", () => {
    assert.deepEqual(findKubeconfig({ HOME: "/h" }, exists(["/h/.kube/config"])), { kind: "files", paths: ["/h/.kube/config"] });
  });

  test("else none", () => {
    assert.equal(findKubeconfig({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBECONFIG: "/missing", HOME: "/h" }, exists([])), undefined);
  });
});

describe("pods through the real client", () => {
  let fake: FakeApiServer;
  let api: PodApi;
  before(async () => {
    fake = await startFakeApiServer();
    api = connectKubernetes({ kind: "files", paths: [fake.kubeconfig] }, { timeoutMs: 5000 });
    for (let i = 0; i < 5; i++) fake.create(jobPod({ name: `job-${i}`, uid: `uid-${i}` }));
    fake.create({ ...jobPod({ name: "web-1", uid: "uid-web" }), metadata: { ...jobPod().metadata, name: "web-1", uid: "uid-web", labels: { app: "web" } } } as never);
  });
  after(() => fake.close());

  test("read gives the pod in its wire format (timestamps as strings)", async () => {
    const pod = await api.read("batch", "job-1");
    assert.equal(pod?.metadata?.uid, "uid-1");
    assert.equal(typeof pod?.metadata?.creationTimestamp, "string");
    assert.equal(Date.parse(String(finishedRun(pod!)?.terminated.finishedAt)), Date.parse("2026-11-24T09:01:46Z"));
  });

  test("read of a pod that does not exist is undefined", async () => {
    assert.equal(await api.read("batch", "nope"), undefined);
  });

  test("list pages with limit and continue", async () => {
    const first = await api.list("batch", { limit: 4 });
    assert.equal(first.items.length, 4);
    assert.ok(first.continue);
    const second = await api.list("batch", { limit: 4, continue: first.continue });
    assert.deepEqual(second.items.map((pod) => pod.metadata?.name), ["job-4", "web-1"]);
    assert.equal(second.continue, undefined);
  });

  test("list with a label selector", async () => {
    assert.deepEqual((await api.list("batch", { limit: 10, labelSelector: "app=web" })).items.map((pod) => pod.metadata?.name), ["web-1"]);
  });

  test("a merge patch with the current resourceVersion applies and bumps it", async () => {
    const before = fake.get("batch", "job-2")!;
    const patched = await api.patch("batch", "job-2", { metadata: { resourceVersion: before.metadata?.resourceVersion, annotations: { a: "1" } } });
    assert.equal(podAnnotation(patched, "a"), "1");
    assert.ok(Number(patched.metadata?.resourceVersion) > Number(before.metadata?.resourceVersion));
    assert.equal(fake.requests.at(-1)?.contentType, "application/merge-patch+json");
  });

  test("a merge patch with a stale resourceVersion is a 409 Conflict", async () => {
    await assert.rejects(
      api.patch("batch", "job-3", { metadata: { resourceVersion: "1", annotations: { a: "1" } } }),
      (error: Error) => error instanceof KubernetesError && error.status === 409 && error.verb === "patch",
    );
    assert.equal(fake.get("batch", "job-3")?.metadata?.annotations, undefined);
  });

  test("a null in a merge patch removes the annotation", async () => {
    await api.patch("batch", "job-2", { metadata: { annotations: { a: null } } });
    assert.deepEqual(fake.get("batch", "job-2")?.metadata?.annotations, {});
  });

  test("a refusal is a KubernetesError with the status and the verb", async () => {
    fake.forbidden.add("patch");
    try {
      await assert.rejects(api.patch("batch", "job-1", { metadata: { annotations: { a: "1" } } }), (error: Error) => error instanceof KubernetesError && error.status === 403 && error.namespace === "batch");
    } finally {
      fake.forbidden.delete("patch");
    }
  });

  test("an unreachable API server is a KubernetesError without a status", async () => {
    const dead = await startFakeApiServer();
    const deadApi = connectKubernetes({ kind: "files", paths: [dead.kubeconfig] }, { timeoutMs: 5000 });
    await dead.close();
    await assert.rejects(deadApi.read("batch", "x"), (error: Error) => error instanceof KubernetesError && error.status === undefined && /cannot reach Kubernetes/.test(error.message));
  });
});

describe("the fake API server speaks the protocol", () => {
  let fake: FakeApiServer;
  before(async () => {
    fake = await startFakeApiServer();
    fake.create(jobPod({ name: "p", uid: "u" }));
  });
  after(() => fake.close());

  const patch = (body: unknown, headers: Record<string, string>) => fetch(`${fake.url}/api/v1/namespaces/batch/pods/p`, { method: "PATCH", headers, body: JSON.stringify(body) });

  test("JSON patch and strategic merge patch apply", async () => {
    assert.equal((await patch([{ op: "add", path: "/metadata/annotations", value: { x: "1" } }], { "content-type": "application/json-patch+json" })).status, 200);
    assert.equal((await patch({ metadata: { annotations: { y: "2" } } }, { "content-type": "application/strategic-merge-patch+json" })).status, 200);
    assert.deepEqual(fake.get("batch", "p")?.metadata?.annotations, { x: "1", y: "2" });
  });

  test("another content type is 415 with a Status", async () => {
    const response = await patch({}, { "content-type": "application/json" });
    assert.equal(response.status, 415);
    assert.deepEqual(await response.json().then((body) => [(body as { kind: string }).kind, (body as { reason: string }).reason]), ["Status", "UnsupportedMediaType"]);
  });

  test("a missing pod is 404 with a NotFound Status", async () => {
    const response = await fetch(`${fake.url}/api/v1/namespaces/batch/pods/nope`);
    assert.equal(response.status, 404);
    assert.equal(((await response.json()) as { reason: string }).reason, "NotFound");
  });
});

describe("refusals are reported once a minute with a count", () => {
  test("the first refusal logs, the next ones within a minute only count", () => {
    const lines: string[] = [];
    let clock = 0;
    const reporter = refusalReporter(createLogger("info", (line) => lines.push(line)), () => clock);
    const error = new KubernetesError(403, "patch", "batch", "Kubernetes answered 403");
    reporter.report(error);
    reporter.report(error);
    clock = 59_000;
    reporter.report(error);
    clock = 61_000;
    reporter.report(error);
    assert.equal(reporter.count(), 4);
    assert.equal(lines.length, 2);
    const last = JSON.parse(lines[1]!) as Record<string, unknown>;
    assert.equal(last.missing, "patch pods");
    assert.equal(last.namespace, "batch");
    assert.equal(last.refusals, 4);
  });
});

/** An HTTPS API server on `host` that answers every GET with `answer`, and a kubeconfig that trusts its certificate. */
async function startTlsApiServer(host: string, answer: (request: http.IncomingMessage) => { status: number; body: unknown }): Promise<{ server: https.Server; url: string; ca: string; kubeconfig: (extra?: { cluster?: string[]; user?: string[] }) => string; authorizations: string[] }> {
  const pems = await generate([{ name: "commonName", value: "kube-apiserver.test" }], { keySize: 2048, extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }, { type: 7, ip: "::1" }] }] });
  const authorizations: string[] = [];
  const server = https.createServer({ cert: pems.cert, key: pems.private }, (request, response) => {
    authorizations.push(String(request.headers.authorization));
    const { status, body } = answer(request);
    response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const url = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const dir = scratchDir("tls-kube-");
  let written = 0;
  const kubeconfig = (extra: { cluster?: string[]; user?: string[] } = {}) => {
    const path = join(dir, `config-${written++}`);
    const lines = ["apiVersion: v1", "kind: Config", "clusters:", "- name: c", "  cluster:", `    server: ${url}`, `    certificate-authority-data: ${Buffer.from(pems.cert).toString("base64")}`, ...(extra.cluster ?? []).map((line) => `    ${line}`), "users:", "- name: u", "  user:", ...(extra.user ?? ["token: static-token"]).map((line) => `    ${line}`), "contexts:", "- name: c", "  context: {cluster: c, user: u}", "current-context: c", ""];
    writeFileSync(path, lines.join("\n"));
    return path;
  };
  return { server, url, ca: pems.cert, kubeconfig, authorizations };
}

describe("IPv6 API servers", () => {
  let apiServer: Awaited<ReturnType<typeof startTlsApiServer>>;
  before(async () => {
    apiServer = await startTlsApiServer("::1", () => ({ status: 200, body: jobPod({ name: "job-6", uid: "uid-6" }) }));
  });
  after(() => apiServer.server.close());

  test("a kubeconfig whose server is https://[::1]:port: the pod is read, the certificate checked against the IPv6 address", async () => {
    const api = connectKubernetes({ kind: "files", paths: [apiServer.kubeconfig()] }, { timeoutMs: 5000 });
    assert.equal((await api.read("batch", "job-6"))?.metadata?.uid, "uid-6");
  });

  test("in a cluster whose KUBERNETES_SERVICE_HOST is an IPv6 literal (no brackets, as Kubernetes sets it): the pod is read", async () => {
    const api = connectKubernetes({ kind: "in-cluster", host: "::1", port: new URL(apiServer.url).port, account: serviceAccountFolder("in-cluster-token", apiServer.ca).account }, { timeoutMs: 5000 });
    assert.equal((await api.read("batch", "job-6"))?.metadata?.uid, "uid-6");
    assert.equal(apiServer.authorizations.at(-1), "Bearer in-cluster-token");
  });
});

describe("a write whose answer is not needed", () => {
  let apiServer: Awaited<ReturnType<typeof startTlsApiServer>>;
  before(async () => {
    apiServer = await startTlsApiServer("127.0.0.1", (request) => (request.url?.includes("/pods/gone") ? { status: 409, body: { kind: "Status", code: 409 } } : { status: 200, body: jobPod({ name: "job-9", uid: "uid-9" }) }));
  });
  after(() => apiServer.server.close());

  test("with answer: false the pod the API server answers is not parsed; a refusal is still a KubernetesError", async () => {
    const api = connectKubernetes({ kind: "files", paths: [apiServer.kubeconfig()] }, { timeoutMs: 5000 });
    assert.equal((await api.patch("batch", "job-9", { metadata: { annotations: { a: "1" } } }))?.metadata?.uid, "uid-9");
    assert.deepEqual(await api.patch("batch", "job-9", { metadata: { annotations: { a: "1" } } }, { answer: false }), {});
    await assert.rejects(api.patch("batch", "gone", {}, { answer: false }), (error: Error) => error instanceof KubernetesError && error.status === 409);
  });
});

describe("a plain kubeconfig, done without the client", () => {
  const plain = { "current-context": "c", contexts: [{ name: "c", context: { cluster: "c", user: "u", namespace: "batch" } }], clusters: [{ name: "c", cluster: { server: "https://10.0.0.1:6443", "certificate-authority-data": Buffer.from("PEM").toString("base64") } }], users: [{ name: "u", user: { token: "t0ken" } }] };

  test("its current context's server, CA data and token", () => {
    assert.deepEqual(plainKubeconfig(plain), { server: "https://10.0.0.1:6443", ca: "PEM", token: "t0ken" });
  });

  test("a user with anything besides a token (a plugin, a client certificate) is left to the client", () => {
    for (const more of [{ exec: { command: "aws" } }, { "auth-provider": { name: "oidc" } }, { "client-certificate-data": "x", "client-key-data": "y" }, { username: "a", password: "b" }]) {
      assert.equal(plainKubeconfig({ ...plain, users: [{ name: "u", user: { token: "t0ken", ...more } }] }), undefined, JSON.stringify(more));
    }
  });

  test("a cluster with anything besides a server, CA data and a TLS server name (proxy-url, a CA file, insecure-skip-tls-verify) is left to the client", () => {
    for (const more of [{ "proxy-url": "http://proxy:3128" }, { "certificate-authority": "/ca.crt" }, { "insecure-skip-tls-verify": true }]) {
      assert.equal(plainKubeconfig({ ...plain, clusters: [{ name: "c", cluster: { server: "https://10.0.0.1:6443", ...more } }] }), undefined, JSON.stringify(more));
    }
  });

  test("an http:// server is left to the client", () => {
    assert.equal(plainKubeconfig({ ...plain, clusters: [{ name: "c", cluster: { server: "http://10.0.0.1:8080" } }] }), undefined);
  });

  test("two users of the current context's name are left to the client (it says which one wins)", () => {
    assert.equal(plainKubeconfig({ ...plain, users: [...plain.users, { name: "u", user: { token: "other" } }] }), undefined);
  });
});

/** An HTTPS API server on 127.0.0.1 that answers every GET with the pod `job-N` (uid `uid-N`), or 401 to a token in `refused`. */
function refusingApiServer(name: string, refused: ReadonlySet<string>): ReturnType<typeof startTlsApiServer> {
  return startTlsApiServer("127.0.0.1", (request) => (refused.has(String(request.headers.authorization)) ? { status: 401, body: { kind: "Status", code: 401 } } : { status: 200, body: jobPod({ name, uid: name.replace("job", "uid") }) }));
}

/** A folder standing in for the service account the kubelet mounts: its token and ca.crt. */
function serviceAccountFolder(token: string, ca: string): { readonly account: string; rotate(next: string): void } {
  const account = scratchDir("service-account-");
  writeFileSync(join(account, "token"), token);
  writeFileSync(join(account, "ca.crt"), ca);
  return { account, rotate: (next) => writeFileSync(join(account, "token"), next) };
}

describe("in a cluster: the service account, without the client", () => {
  let apiServer: Awaited<ReturnType<typeof startTlsApiServer>>;
  /** Tokens the API server refuses with 401. */
  const refused = new Set<string>();
  before(async () => (apiServer = await refusingApiServer("job-8", refused)));
  after(() => apiServer.server.close());
  const inCluster = (account: string): KubeconfigSource => ({ kind: "in-cluster", host: "127.0.0.1", port: new URL(apiServer.url).port, account });

  test("the token file's token is sent, over https checked against ca.crt", async () => {
    const api = connectKubernetes(inCluster(serviceAccountFolder("sa-token", apiServer.ca).account), { timeoutMs: 5000 });
    assert.equal((await api.read("batch", "job-8"))?.metadata?.uid, "uid-8");
    assert.equal(apiServer.authorizations.at(-1), "Bearer sa-token");
  });

  test("a server whose certificate ca.crt does not sign: the call fails and sends no token", async () => {
    const other = await generate([{ name: "commonName", value: "other" }], { keySize: 2048 });
    const before = apiServer.authorizations.length;
    const api = connectKubernetes(inCluster(serviceAccountFolder("sa-token", other.cert).account), { timeoutMs: 5000 });
    await assert.rejects(api.read("batch", "job-8"), (error: Error) => error instanceof KubernetesError && error.status === undefined && /cannot reach Kubernetes/.test(error.message));
    assert.equal(apiServer.authorizations.length, before);
  });

  test("a rotated token file is followed: the new token is sent a second later, with no 401 needed", async () => {
    const folder = serviceAccountFolder("first-sa-token", apiServer.ca);
    const api = connectKubernetes(inCluster(folder.account), { timeoutMs: 5000 });
    await api.read("batch", "job-8");
    folder.rotate("second-sa-token");
    await new Promise((resolve) => setTimeout(resolve, 1100)); // past the second for which what was read is reused
    await api.read("batch", "job-8");
    assert.equal(apiServer.authorizations.at(-1), "Bearer second-sa-token");
  });

  test("a rotated token file is read again at once after a 401", async () => {
    const folder = serviceAccountFolder("old-sa-token", apiServer.ca);
    const api = connectKubernetes(inCluster(folder.account), { timeoutMs: 5000 });
    await api.read("batch", "job-8");
    refused.add("Bearer old-sa-token");
    folder.rotate("new-sa-token");
    await api.read("batch", "job-8").catch((error: unknown) => assert.ok(error instanceof KubernetesError && error.status === 401));
    assert.equal((await api.read("batch", "job-8"))?.metadata?.uid, "uid-8");
    assert.equal(apiServer.authorizations.at(-1), "Bearer new-sa-token");
  });

  /** Runs, in a child whose import of @kubernetes/client-node fails, a preload and one read through `source`; its output. */
  const withoutClient = async (source: KubeconfigSource): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const dir = scratchDir("no-client-");
    writeFileSync(join(dir, "hooks.mjs"), `export async function resolve(specifier, context, next) { if (specifier.startsWith("@kubernetes/client-node")) throw new Error("@kubernetes/client-node was imported"); return next(specifier, context); }\n`);
    writeFileSync(join(dir, "register.mjs"), `import { register } from "node:module"; register(${JSON.stringify(pathToFileURL(join(dir, "hooks.mjs")).href)});\n`);
    const edge = new URL("../handler/edges/kubernetes.js", import.meta.url).href;
    const script = `const { connectKubernetes, preloadKubernetes } = await import(${JSON.stringify(edge)}); const source = ${JSON.stringify(source)}; await preloadKubernetes(source); const pod = await connectKubernetes(source, { timeoutMs: 5000 }).read("batch", "job-8"); console.log(pod.metadata.uid);`;
    return new Promise((resolve) => execFile(process.execPath, ["--import", pathToFileURL(join(dir, "register.mjs")).href, "--input-type=module", "-e", script], (error, stdout, stderr) => resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), stdout, stderr })));
  };

  test("the in-cluster path never imports @kubernetes/client-node (a child in which that import fails reads the pod)", async () => {
    const { code, stdout, stderr } = await withoutClient(inCluster(serviceAccountFolder("sa-token", apiServer.ca).account));
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), "uid-8");
  });

  test("a plain kubeconfig (a server, its CA data, a token) never imports @kubernetes/client-node either", async () => {
    const { code, stdout, stderr } = await withoutClient({ kind: "files", paths: [apiServer.kubeconfig()] });
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), "uid-8");
  });

  test("that child does catch the import: the call of a kubeconfig that needs the client (an auth-provider) fails in it", async () => {
    const tokenFile = join(scratchDir("token-file-"), "token");
    writeFileSync(tokenFile, "sa-token");
    const { code, stderr } = await withoutClient({ kind: "files", paths: [apiServer.kubeconfig({ user: ["auth-provider:", "  name: tokenFile", "  config:", `    tokenFile: ${tokenFile}`] })] });
    assert.notEqual(code, 0);
    assert.match(stderr, /@kubernetes\/client-node was imported/);
  });
});

describe("credentials that change: exec plugins, rotated token files, and proxy-url", () => {
  let apiServer: Awaited<ReturnType<typeof startTlsApiServer>>;
  /** Tokens the API server refuses with 401. */
  const refused = new Set<string>();
  before(async () => (apiServer = await refusingApiServer("job-7", refused)));
  after(() => apiServer.server.close());

  /** A kubeconfig whose user runs `script` with /bin/sh as its exec plugin. */
  const pluginConfig = (script: string) => apiServer.kubeconfig({ user: ["exec:", "  apiVersion: client.authentication.k8s.io/v1", "  command: /bin/sh", `  args: ["-c", ${JSON.stringify(script)}]`, "  interactiveMode: Never"] });
  const runs = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).length : 0);
  const within = <T>(ms: number, promise: Promise<T>) => Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms).unref())]);

  test("a plugin that never answers: the call fails within its time limit, and the plugin is killed", async () => {
    const pidFile = join(scratchDir("plugin-"), "pid");
    const api = connectKubernetes({ kind: "files", paths: [pluginConfig(`echo $$ > ${pidFile}; exec sleep 600`)] }, { timeoutMs: 300 });
    await assert.rejects(within(10_000, api.read("batch", "job-7")), (error: Error) => error instanceof KubernetesError && error.timedOut);
    const pid = Number(readFileSync(pidFile, "utf8"));
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let waited = 0; alive() && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(alive(), false, "the plugin process still runs");
  });

  test("an exec whose args are one string, not a list: nothing is run, and the call fails saying why", async () => {
    const marker = join(scratchDir("plugin-"), "ran");
    const config = apiServer.kubeconfig({ user: ["exec:", "  apiVersion: client.authentication.k8s.io/v1", "  command: /bin/sh", `  args: "-c touch ${marker}"`] });
    const api = connectKubernetes({ kind: "files", paths: [config] }, { timeoutMs: 5000 });
    await assert.rejects(api.read("batch", "job-7"), (error: Error) => error instanceof KubernetesError && /exec is not valid/.test(error.message));
    assert.equal(existsSync(marker), false);
  });

  test("a plugin without expirationTimestamp runs once for concurrent calls and for later ones, and again after a 401", async () => {
    const count = join(scratchDir("plugin-"), "runs");
    const token = join(scratchDir("plugin-"), "token");
    writeFileSync(token, "first");
    const api = connectKubernetes({ kind: "files", paths: [pluginConfig(`echo run >> ${count}; printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$(cat ${token})"`)] }, { timeoutMs: 5000 });
    await Promise.all(Array.from({ length: 5 }, () => api.read("batch", "job-7")));
    await new Promise((resolve) => setTimeout(resolve, 1100)); // past the second for which the client's options are reused
    await api.read("batch", "job-7");
    await api.read("batch", "job-7");
    assert.equal(runs(count), 1);
    refused.add("Bearer first");
    writeFileSync(token, "second");
    await assert.rejects(api.read("batch", "job-7"), (error: Error) => error instanceof KubernetesError && error.status === 401);
    assert.equal((await api.read("batch", "job-7"))?.metadata?.uid, "uid-7");
    assert.equal(runs(count), 2);
    assert.equal(apiServer.authorizations.at(-1), "Bearer second");
  });

  test("a plugin's credential is kept until its expirationTimestamp", async () => {
    const count = join(scratchDir("plugin-"), "runs");
    const expires = new Date(Date.now() + 3_600_000).toISOString();
    const api = connectKubernetes({ kind: "files", paths: [pluginConfig(`echo run >> ${count}; echo '${JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: "hourly", expirationTimestamp: expires } })}'`)] }, { timeoutMs: 5000 });
    await api.read("batch", "job-7");
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await api.read("batch", "job-7");
    assert.equal(runs(count), 1);
    assert.equal(apiServer.authorizations.at(-1), "Bearer hourly");
  });

  test("a rotated service account token file is read again at once after a 401", async () => {
    const dir = scratchDir("token-file-");
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "old-token");
    const api = connectKubernetes({ kind: "files", paths: [apiServer.kubeconfig({ user: ["auth-provider:", "  name: tokenFile", "  config:", `    tokenFile: ${tokenFile}`] })] }, { timeoutMs: 5000 });
    assert.equal((await api.read("batch", "job-7"))?.metadata?.uid, "uid-7");
    refused.add("Bearer old-token");
    writeFileSync(tokenFile, "new-token");
    // Within the second for which what was applied is reused, the old token may be sent once more: the 401 ends that.
    await api.read("batch", "job-7").catch((error: unknown) => assert.ok(error instanceof KubernetesError && error.status === 401));
    assert.equal((await api.read("batch", "job-7"))?.metadata?.uid, "uid-7");
    assert.equal(apiServer.authorizations.at(-1), "Bearer new-token");
  });

  test("a call that ended while it waited for its credential sends nothing once the credential comes", async () => {
    const tokenFile = join(scratchDir("token-fifo-"), "token");
    execFileSync("mkfifo", [tokenFile]); // reading it waits until the test writes: a credential that takes its time
    const api = connectKubernetes({ kind: "files", paths: [apiServer.kubeconfig({ user: ["auth-provider:", "  name: tokenFile", "  config:", `    tokenFile: ${tokenFile}`] })] }, { timeoutMs: 300 });
    await assert.rejects(api.read("batch", "job-7"), (error: Error) => error instanceof KubernetesError && error.timedOut);
    const before = apiServer.authorizations.length;
    writeFileSync(tokenFile, "late-token");
    assert.equal((await api.read("batch", "job-7"))?.metadata?.uid, "uid-7"); // a second call, with the credential the first waited for
    assert.equal(apiServer.authorizations.length - before, 1);
  });

  test("proxy-url: every call goes through the proxy", async () => {
    const tunnels: string[] = [];
    const proxy = http.createServer();
    proxy.on("connect", (request: http.IncomingMessage, client: net.Socket) => {
      tunnels.push(String(request.url));
      const [host, port] = String(request.url).split(":");
      const upstream = net.connect(Number(port), host, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const api = connectKubernetes({ kind: "files", paths: [apiServer.kubeconfig({ cluster: [`proxy-url: http://127.0.0.1:${(proxy.address() as AddressInfo).port}`] })] }, { timeoutMs: 5000 });
      assert.equal((await api.read("batch", "job-7"))?.metadata?.uid, "uid-7");
      assert.deepEqual(tunnels, [new URL(apiServer.url).host]);
    } finally {
      proxy.closeAllConnections();
      proxy.close();
    }
  });
});
