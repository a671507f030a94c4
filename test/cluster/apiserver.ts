// A real Kubernetes API server for the tests: etcd 3.4 (Debian's etcd-server) and kube-apiserver
// 1.20 (built from Debian's kubernetes source package by test/cluster/install.sh), started on free
// loopback ports in a temp folder and stopped with the tests. No scheduler, no kubelet, no
// controller manager: a test plays the kubelet by writing pods/status, and pods need no token
// Secret (the ServiceAccount admission plugin is off).
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../handler/demo/cadvisor-stand-in.js";
import { scratchDir } from "../support/scratch.js";

const REPOSITORY = fileURLToPath(new URL("../../../", import.meta.url));
export const KUBE_APISERVER = process.env.KUBE_APISERVER ?? join(REPOSITORY, ".cache/kube/kube-apiserver");
export const ETCD = process.env.ETCD ?? "/usr/bin/etcd";

/** Why the real tier cannot run here, or undefined when it can. */
export function missingComponents(): string | undefined {
  const missing = [KUBE_APISERVER, ETCD].filter((path) => !existsSync(path));
  return missing.length === 0 ? undefined : `${missing.join(" and ")} not found: run test/cluster/install.sh (it installs etcd and builds kube-apiserver)`;
}

export interface ApiAnswer {
  readonly status: number;
  readonly body: any;
}

export interface RealApiServer {
  readonly url: string;
  /** The serving certificate kube-apiserver made for itself (PEM): the CA a client trusts. */
  readonly ca: string;
  /** A kubeconfig file for `token` (default: the admin's). */
  kubeconfig(token?: string, name?: string): string;
  /** One request as the admin (or with `token`): JSON in, JSON out. */
  request(method: string, path: string, body?: unknown, options?: { token?: string; contentType?: string }): Promise<ApiAnswer>;
  /** A service-account token for `audiences` (TokenRequest), as Knative or a pod would get one. */
  serviceAccountToken(namespace: string, name: string, audiences?: readonly string[], seconds?: number): Promise<string>;
  /** A namespace, labelled with kubernetes.io/metadata.name (1.20 does not add it; 1.21+ does). */
  createNamespace(name: string): Promise<void>;
  /** Every change of pods in `namespace` from now on, as the watch sends it; call the result to stop. */
  watchPods(namespace: string, listener: (type: string, pod: any) => void): Promise<() => void>;
  stop(): Promise<void>;
}

const ADMIN_TOKEN = "admin-token-for-the-tests-only";

function started(child: ChildProcess, name: string, log: string[]): Promise<never> {
  return new Promise((_, reject) => {
    child.once("exit", (code, signal) => reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${log.join("").slice(-3000)}`)));
  });
}

export async function startRealApiServer(): Promise<RealApiServer> {
  const missing = missingComponents();
  if (missing !== undefined) throw new Error(missing);
  const dir = scratchDir("real-kube-");
  const [etcdClient, etcdPeer, securePort] = await Promise.all([freePort(), freePort(), freePort()]);
  const logs: string[] = [];
  const etcd = spawn(ETCD, [
    "--name", "test",
    "--data-dir", join(dir, "etcd"),
    "--listen-client-urls", `http://127.0.0.1:${etcdClient}`,
    "--advertise-client-urls", `http://127.0.0.1:${etcdClient}`,
    "--listen-peer-urls", `http://127.0.0.1:${etcdPeer}`,
    "--initial-advertise-peer-urls", `http://127.0.0.1:${etcdPeer}`,
    "--initial-cluster", `test=http://127.0.0.1:${etcdPeer}`,
    "--log-level", "error",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  etcd.stdout!.on("data", (chunk: Buffer) => logs.push(`[etcd] ${chunk}`));
  etcd.stderr!.on("data", (chunk: Buffer) => logs.push(`[etcd] ${chunk}`));

  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
  writeFileSync(join(dir, "sa.pub"), publicKey);
  writeFileSync(join(dir, "sa.key"), privateKey);
  writeFileSync(join(dir, "tokens.csv"), `${ADMIN_TOKEN},admin,admin-uid,system:masters\n`);
  const apiserver = spawn(KUBE_APISERVER, [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    `--secure-port=${securePort}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    "--insecure-port=0",
    `--cert-dir=${join(dir, "certs")}`,
    `--token-auth-file=${join(dir, "tokens.csv")}`,
    "--authorization-mode=RBAC",
    `--service-account-key-file=${join(dir, "sa.pub")}`,
    `--service-account-signing-key-file=${join(dir, "sa.key")}`,
    "--service-account-issuer=https://kubernetes.default.svc",
    "--api-audiences=https://kubernetes.default.svc",
    "--service-cluster-ip-range=10.0.0.0/24",
    // Without a controller manager no token Secrets appear: pods are created without a token volume.
    "--disable-admission-plugins=ServiceAccount",
    "--enable-admission-plugins=LimitRanger,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
    "--v=0",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  apiserver.stdout!.on("data", (chunk: Buffer) => logs.push(`[apiserver] ${chunk}`));
  apiserver.stderr!.on("data", (chunk: Buffer) => logs.push(`[apiserver] ${chunk}`));

  const url = `https://127.0.0.1:${securePort}`;
  const stop = async () => {
    for (const child of [apiserver, etcd]) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  let ca = "";
  const call = (method: string, path: string, body?: unknown, options: { token?: string; contentType?: string } = {}): Promise<ApiAnswer> =>
    new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
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

  try {
    const deadline = Date.now() + 60_000;
    const crashed = Promise.race([started(etcd, "etcd", logs), started(apiserver, "kube-apiserver", logs)]);
    crashed.catch(() => {});
    for (;;) {
      const ready = await Promise.race([call("GET", "/readyz").catch(() => undefined), crashed]);
      if (ready?.status === 200) break;
      if (Date.now() > deadline) throw new Error(`kube-apiserver not ready within 60 s:\n${logs.join("").slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    ca = readFileSync(join(dir, "certs", "apiserver.crt"), "utf8");
  } catch (error) {
    await stop();
    throw error;
  }

  let kubeconfigs = 0;
  const server: RealApiServer = {
    url,
    ca,
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
      const answer = await call("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { "kubernetes.io/metadata.name": name } } });
      if (answer.status !== 201 && answer.status !== 409) throw new Error(`namespace ${name}: ${answer.status}`);
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
    stop,
  };
  return server;
}

/** Where each kind of document is created (the kinds `manifests` writes that a bare API server serves). */
export function collectionPath(document: { apiVersion: string; kind: string; metadata: { namespace?: string } }): string | undefined {
  const ns = document.metadata.namespace;
  const paths: Record<string, string | undefined> = {
    "v1/Namespace": "/api/v1/namespaces",
    "v1/ServiceAccount": `/api/v1/namespaces/${ns}/serviceaccounts`,
    "v1/Service": `/api/v1/namespaces/${ns}/services`,
    "rbac.authorization.k8s.io/v1/Role": `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
    "rbac.authorization.k8s.io/v1/RoleBinding": `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
    "rbac.authorization.k8s.io/v1/ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "networking.k8s.io/v1/NetworkPolicy": `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`,
    "apps/v1/Deployment": `/apis/apps/v1/namespaces/${ns}/deployments`,
    "policy/v1/PodDisruptionBudget": undefined, // policy/v1 is 1.21+
    "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
  };
  return paths[`${document.apiVersion}/${document.kind}`];
}
