// A real Kubernetes API server for the tests: kube-apiserver of the newest release or of the oldest
// minor the README claims, with etcd 3.6 (both built by test/cluster/install.sh from their Go
// modules), started on free loopback ports in a temp folder and stopped with the tests. Alone it
// has no controllers and no kubelet: control-plane.ts adds the controller manager, the scheduler
// and kwok.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { freePort } from "../../handler/demo/cadvisor-stand-in.js";
import { scratchDir } from "../support/scratch.js";
import { kubernetes, type KubernetesRelease } from "./components.js";
import { startEtcd } from "./etcd.js";
import { startComponent, waitUntil, type Component } from "./process.js";

export interface ApiAnswer {
  readonly status: number;
  readonly body: any;
}

export interface RequestOptions {
  readonly token?: string;
  readonly contentType?: string;
}

export interface RealApiServer {
  readonly url: string;
  /** What /version says, e.g. v1.37.2. */
  readonly version: string;
  readonly release: KubernetesRelease;
  /** The serving certificate kube-apiserver made for itself (PEM): the CA a client trusts. */
  readonly ca: string;
  /** The folder of this server's files (kubeconfigs, keys); removed when it stops. */
  readonly dir: string;
  /** A kubeconfig file for `token` (default: the admin's). */
  kubeconfig(token?: string, name?: string): string;
  /** One request as the admin (or with `token`): JSON in, JSON out. */
  request(method: string, path: string, body?: unknown, options?: RequestOptions): Promise<ApiAnswer>;
  /** A service-account token for `audiences` (TokenRequest), as Knative or a pod would get one. */
  serviceAccountToken(namespace: string, name: string, audiences?: readonly string[], seconds?: number): Promise<string>;
  /** A namespace with its default ServiceAccount (the API server labels it kubernetes.io/metadata.name). */
  createNamespace(name: string): Promise<void>;
  /** Every change of pods in `namespace` from now on, as the watch sends it; call the result to stop. */
  watchPods(namespace: string, listener: (type: string, pod: any) => void): Promise<() => void>;
  /** Stops the API server only (etcd keeps the data), and starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const ADMIN_TOKEN = "admin-token-for-the-tests-only";

export interface ApiServerOptions {
  readonly release?: KubernetesRelease;
  /** More flags, e.g. --feature-gates. */
  readonly flags?: readonly string[];
}

export async function startRealApiServer(options: ApiServerOptions = {}): Promise<RealApiServer> {
  const release = options.release ?? "newest";
  const binaries = kubernetes(release);
  const dir = scratchDir("real-kube-");
  const etcd = await startEtcd(dir);
  const securePort = await freePort();
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
  writeFileSync(join(dir, "sa.pub"), publicKey);
  writeFileSync(join(dir, "sa.key"), privateKey);
  writeFileSync(join(dir, "tokens.csv"), `${ADMIN_TOKEN},admin,admin-uid,system:masters\n`);
  const args = [
    `--etcd-servers=${etcd.url}`,
    `--secure-port=${securePort}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    // The kubernetes Service would point at a loopback address, which current releases refuse.
    "--endpoint-reconciler-type=none",
    `--cert-dir=${join(dir, "certs")}`,
    `--token-auth-file=${join(dir, "tokens.csv")}`,
    "--authorization-mode=RBAC",
    `--service-account-key-file=${join(dir, "sa.pub")}`,
    `--service-account-signing-key-file=${join(dir, "sa.key")}`,
    "--service-account-issuer=https://kubernetes.default.svc",
    "--api-audiences=https://kubernetes.default.svc",
    "--service-cluster-ip-range=10.0.0.0/24",
    "--enable-admission-plugins=LimitRanger,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
    "--v=0",
    ...(options.flags ?? []),
  ];
  const components: Component[] = [etcd.component];
  let apiserver = startComponent("kube-apiserver", binaries.apiserver, args);
  components.push(apiserver);

  const url = `https://127.0.0.1:${securePort}`;
  const stop = async () => {
    for (const component of [apiserver, etcd.component]) await component.stop();
    rmSync(dir, { recursive: true, force: true });
  };

  let ca = "";
  const call = (method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<ApiAnswer> =>
    new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
      const request = https.request(
        new URL(path, url),
        {
          method,
          ...(ca === "" ? { rejectUnauthorized: false } : { ca }),
          headers: { authorization: `Bearer ${options.token ?? ADMIN_TOKEN}`, accept: "application/json", ...(text === undefined ? {} : { "content-type": options.contentType ?? "application/json" }) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => {
            const raw = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = raw;
            try {
              parsed = JSON.parse(raw);
            } catch {
              // not JSON (e.g. "ok" from /readyz)
            }
            resolve({ status: response.statusCode ?? 0, body: parsed });
          });
        },
      );
      request.on("error", reject);
      request.end(text);
    });
  const ready = () => waitUntil("kube-apiserver", async () => (await call("GET", "/readyz")).status === 200, [etcd.component, apiserver], 90_000);

  let version = "";
  try {
    await ready();
    ca = readFileSync(join(dir, "certs", "apiserver.crt"), "utf8");
    version = String((await call("GET", "/version")).body.gitVersion);
  } catch (error) {
    await stop();
    throw error;
  }

  let kubeconfigs = 0;
  const server: RealApiServer = {
    url,
    release,
    version,
    ca,
    dir,
    kubeconfig(token = ADMIN_TOKEN, name = "admin") {
      const file = join(dir, `kubeconfig-${name}-${++kubeconfigs}`);
      writeFileSync(
        file,
        [
          "apiVersion: v1",
          "kind: Config",
          "clusters:",
          `- name: real\n  cluster:\n    server: ${url}\n    certificate-authority-data: ${Buffer.from(ca).toString("base64")}`,
          "users:",
          `- name: ${name}\n  user:\n    token: ${token}`,
          "contexts:",
          `- name: real\n  context:\n    cluster: real\n    user: ${name}`,
          "current-context: real",
          "",
        ].join("\n"),
      );
      return file;
    },
    request: call,
    async serviceAccountToken(namespace, name, audiences = ["https://kubernetes.default.svc"], seconds = 3600) {
      const answer = await call("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences, expirationSeconds: seconds } });
      if (answer.status !== 201) throw new Error(`TokenRequest for ${namespace}/${name}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
      return answer.body.status.token as string;
    },
    async createNamespace(name) {
      const answer = await call("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
      if (answer.status !== 201 && answer.status !== 409) throw new Error(`namespace ${name}: ${answer.status}`);
      // The serviceaccount controller makes it too when it runs; pods need it at once.
      const account = await call("POST", `/api/v1/namespaces/${name}/serviceaccounts`, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default" } });
      if (account.status !== 201 && account.status !== 409) throw new Error(`the default ServiceAccount of ${name}: ${account.status}`);
    },
    async watchPods(namespace, listener) {
      const list = await call("GET", `/api/v1/namespaces/${namespace}/pods`);
      const request = https.request(new URL(`/api/v1/namespaces/${namespace}/pods?watch=1&resourceVersion=${list.body.metadata.resourceVersion}`, url), { ca, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, (response) => {
        let buffered = "";
        response.on("data", (chunk: Buffer) => {
          buffered += chunk.toString("utf8");
          let newline;
          while ((newline = buffered.indexOf("\n")) !== -1) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            if (line.trim() === "") continue;
            const event = JSON.parse(line) as { type: string; object: unknown };
            listener(event.type, event.object);
          }
        });
      });
      request.on("error", () => {});
      request.end();
      return () => request.destroy();
    },
    async restart() {
      await apiserver.stop();
      apiserver = startComponent("kube-apiserver", binaries.apiserver, args);
      components.push(apiserver);
      await ready();
    },
    stop,
  };
  return server;
}

/** The documents `manifests` writes, as kubectl applies them: where each is created, by discovery. */
export interface Document {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

const discovered = new WeakMap<RealApiServer, Map<string, Promise<ApiAnswer>>>();

/** The collection a document is POSTed to, from the API server's discovery; undefined for a kind it does not serve. */
export async function collectionPath(server: RealApiServer, document: Document): Promise<string | undefined> {
  const groupVersion = document.apiVersion.includes("/") ? `/apis/${document.apiVersion}` : `/api/${document.apiVersion}`;
  const cache = discovered.get(server) ?? new Map<string, Promise<ApiAnswer>>();
  discovered.set(server, cache);
  if (!cache.has(groupVersion)) cache.set(groupVersion, server.request("GET", groupVersion));
  const answer = await cache.get(groupVersion)!;
  if (answer.status !== 200) {
    cache.delete(groupVersion);
    return undefined;
  }
  const resource = (answer.body.resources as Array<{ name: string; kind: string; namespaced: boolean }>).find((entry) => entry.kind === document.kind && !entry.name.includes("/"));
  if (resource === undefined) return undefined;
  return resource.namespaced ? `${groupVersion}/namespaces/${document.metadata.namespace ?? "default"}/${resource.name}` : `${groupVersion}/${resource.name}`;
}

/** Creates every document (strict field validation: an unknown or misspelt field is an error); returns the answers that were not 201. */
export async function createAll(server: RealApiServer, documents: readonly Document[], options: { readonly strict?: boolean; readonly token?: string; readonly dryRun?: boolean } = {}): Promise<string[]> {
  const refused: string[] = [];
  for (const document of documents) {
    const path = await collectionPath(server, document);
    const name = `${document.kind} ${document.metadata.namespace ?? ""}/${document.metadata.name}`;
    if (path === undefined) {
      refused.push(`${name}: the API server does not serve ${document.apiVersion} ${document.kind}`);
      continue;
    }
    const query = [...(options.strict === false ? [] : ["fieldValidation=Strict"]), ...(options.dryRun === true ? ["dryRun=All"] : [])];
    const answer = await server.request("POST", `${path}${query.length === 0 ? "" : `?${query.join("&")}`}`, document, options.token === undefined ? {} : { token: options.token });
    if (answer.status !== 201) refused.push(`${name}: ${answer.status} ${typeof answer.body === "object" ? String(answer.body.message).slice(0, 600) : String(answer.body).slice(0, 300)}`);
  }
  return refused;
}
