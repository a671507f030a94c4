// `check`, the part that reads the cluster: every fact checks.ts judges, read with the user's
// kubeconfig (the client's own authentication: tokens, certificates, exec plugins), each request
// bounded in time and size. Nothing it reads is printed raw: checks.ts keeps names and statuses.
import { X509Certificate } from "node:crypto";
import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { DEFAULT_OPTUNE_URL } from "../edges/config.js";
import type { KubeconfigSource } from "../edges/kubernetes.js";
import { loadKubernetesClient } from "../edges/kubernetes.js";
import { isRecord, text } from "../jobs/pod.js";
import { FUNCTION, SOURCE, WEBHOOK } from "../deploy/manifests.js";
import { accessQuestions, type CheckOptions, type ClusterFacts, type Read } from "./checks.js";

const TIMEOUT_MS = 5000;
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

type Get = (path: string) => Promise<{ status: number; body: unknown }>;
type Post = (path: string, body: unknown) => Promise<{ status: number; body: unknown }>;

/** With --optune: sends one HELLO, as the function does at start (it is visible in Optune). */
export type SayHello = (url: string) => Promise<true | string>;

export async function gatherFacts(source: KubeconfigSource, options: CheckOptions, hello?: SayHello): Promise<ClusterFacts> {
  const { get, post } = await connect(source);
  const version = await get("/version").catch((error: Error) => ({ status: 0, body: error.message }));
  if (version.status !== 200) {
    return { server: { error: version.status === 0 ? `cannot reach it: ${String(version.body)}` : `it answered ${version.status} to GET /version` }, apis: [], access: [], service: { absent: true }, pingSource: { absent: true }, sources: {}, pods: {} };
  }
  const read = async (path: string): Promise<Read> => {
    try {
      const answer = await get(path);
      if (answer.status === 404) return { absent: true };
      if (answer.status !== 200 || !isRecord(answer.body)) return { error: `GET ${path} answered ${answer.status}` };
      return { found: answer.body };
    } catch (error) {
      return { error: (error as Error).message };
    }
  };

  const apis = await get("/apis").then((answer) => {
    const groups = isRecord(answer.body) && Array.isArray(answer.body.groups) ? answer.body.groups : [];
    return groups.flatMap((group) => (isRecord(group) && Array.isArray(group.versions) ? group.versions.map((version) => text(isRecord(version) ? version.groupVersion : undefined) ?? "") : []));
  });
  const access = await Promise.all(
    accessQuestions(options).map(async (question) => {
      const [, , saNamespace] = question.subject.split(":");
      const review = { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec: { user: question.subject, groups: ["system:serviceaccounts", `system:serviceaccounts:${saNamespace}`, "system:authenticated"], resourceAttributes: { namespace: question.namespace, verb: question.verb, resource: question.resource, group: question.group } } };
      const answer = await post("/apis/authorization.k8s.io/v1/subjectaccessreviews", review).catch((error: Error) => ({ status: 0, body: error.message }));
      const allowed = answer.status === 201 && isRecord(answer.body) && isRecord(answer.body.status) ? answer.body.status.allowed === true : `SubjectAccessReview answered ${answer.status}`;
      return { ...question, allowed };
    }),
  );
  const { namespace } = options;
  const service = options.target === "knative" ? await read(`/apis/serving.knative.dev/v1/namespaces/${namespace}/services/${FUNCTION}`) : ({ absent: true } as const);
  const pingSource = options.target === "knative" ? await read(`/apis/sources.knative.dev/v1/namespaces/${namespace}/pingsources/servo-sweep`) : ({ absent: true } as const);
  const sources: Record<string, Read> = {};
  const pods: Record<string, readonly Record<string, unknown>[] | { error: string }> = {};
  for (const watched of options.watch) {
    sources[watched] = await read(`/apis/sources.knative.dev/v1/namespaces/${watched}/apiserversources/${SOURCE}`);
    const list = await read(`/api/v1/namespaces/${watched}/pods?limit=500`);
    pods[watched] = "found" in list ? (Array.isArray(list.found.items) ? list.found.items.filter(isRecord) : []) : { error: "error" in list ? list.error : "no such namespace" };
  }
  const tokenSecret = "found" in service ? await secretFacts(read, namespace, service.found) : undefined;
  const appIdSpec = "found" in service ? envOf(service.found, "OPTUNE_APP_ID") : undefined;
  const optune = await optuneFacts(("found" in service ? envOf(service.found, "OPTUNE_URL") : undefined) ?? DEFAULT_OPTUNE_URL, hello);
  const webhook = options.webhook ? await webhookFacts(read, namespace) : undefined;
  const server = isRecord(version.body) ? { version: text(version.body.gitVersion) ?? "unknown version" } : { version: "unknown version" };
  return { server, apis, access, service, pingSource, sources, pods, optune, ...(appIdSpec === undefined ? {} : { appIdSpec }), ...(tokenSecret === undefined ? {} : { tokenSecret }), ...(webhook === undefined ? {} : { webhook }) };
}

/** Whether Optune's host resolves and answers (any HTTP status: a GET of the origin, no message), and, when asked, a HELLO. */
async function optuneFacts(url: string, hello: SayHello | undefined): Promise<NonNullable<ClusterFacts["optune"]>> {
  let origin: URL;
  try {
    origin = new URL(new URL(url.replaceAll("{acct}", "a").replaceAll("{app_id}", "a")).origin);
  } catch {
    return { url, resolves: "OPTUNE_URL is not a URL" };
  }
  try {
    await lookup(origin.hostname);
  } catch (error) {
    return { url, resolves: `cannot resolve ${origin.hostname}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
  }
  const answers = await new Promise<number | string>((resolve) => {
    const call = (origin.protocol === "http:" ? http : https).request(origin, { method: "GET", timeout: TIMEOUT_MS }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    call.on("timeout", () => call.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    call.on("error", (error) => resolve(`cannot reach it: ${error.message}`));
    call.end();
  });
  return { url, resolves: true, answers, ...(hello === undefined ? {} : { hello: await hello(url) }) };
}

/** One entry of the function container's environment, as the Knative Service declares it. */
function envEntry(service: Record<string, unknown>, name: string): Record<string, unknown> | undefined {
  const containers = (service as { spec?: { template?: { spec?: { containers?: unknown[] } } } }).spec?.template?.spec?.containers ?? [];
  const env = isRecord(containers[0]) && Array.isArray(containers[0].env) ? containers[0].env : [];
  return env.find((item): item is Record<string, unknown> => isRecord(item) && item.name === name);
}

/** One plain value of the function container's environment. */
function envOf(service: Record<string, unknown>, name: string): string | undefined {
  return text(envEntry(service, name)?.value);
}

/** Which Secret and key the function's environment reads the token from, and which keys that Secret has (never its values). */
async function secretFacts(read: (path: string) => Promise<Read>, namespace: string, service: Record<string, unknown>): Promise<ClusterFacts["tokenSecret"]> {
  const entry = envEntry(service, "OPTUNE_AUTH_TOKEN") as { valueFrom?: { secretKeyRef?: { name?: string; key?: string } } } | undefined;
  const ref = entry?.valueFrom?.secretKeyRef ?? mountedSecret(service, envOf(service, "OPTUNE_AUTH_TOKEN_FILE"));
  if (ref?.name === undefined || ref.key === undefined) return undefined;
  const secret = await read(`/api/v1/namespaces/${namespace}/secrets/${ref.name}`);
  if ("error" in secret) return { name: ref.name, key: ref.key, keys: [], error: secret.error };
  return { name: ref.name, key: ref.key, keys: "found" in secret && isRecord(secret.found.data) ? Object.keys(secret.found.data) : undefined };
}

/** The Secret and key a token file comes from, when it is a file of a Secret volume mounted in the function's container. */
function mountedSecret(service: Record<string, unknown>, file: string | undefined): { name?: string; key?: string } | undefined {
  if (file === undefined) return undefined;
  const pod = (service as { spec?: { template?: { spec?: { containers?: unknown[]; volumes?: unknown[] } } } }).spec?.template?.spec;
  const container = pod?.containers?.[0] as { volumeMounts?: Array<{ name?: unknown; mountPath?: unknown }> } | undefined;
  const mount = container?.volumeMounts?.find((candidate) => typeof candidate.mountPath === "string" && file.startsWith(`${candidate.mountPath.replace(/\/$/, "")}/`));
  const volume = pod?.volumes?.find((candidate) => isRecord(candidate) && candidate.name === mount?.name) as { secret?: { secretName?: string; items?: Array<{ key?: string; path?: string }> } } | undefined;
  if (mount === undefined || volume?.secret?.secretName === undefined) return undefined;
  const path = file.slice(String(mount.mountPath).replace(/\/$/, "").length + 1);
  return { name: volume.secret.secretName, key: volume.secret.items?.find((item) => item.path === path)?.key ?? path };
}

async function webhookFacts(read: (path: string) => Promise<Read>, namespace: string): Promise<NonNullable<ClusterFacts["webhook"]>> {
  const configuration = await read(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${FUNCTION}`);
  const deployment = await read(`/apis/apps/v1/namespaces/${namespace}/deployments/${WEBHOOK}`);
  const secret = await read(`/api/v1/namespaces/${namespace}/secrets/${WEBHOOK}-tls`);
  let certificate: NonNullable<ClusterFacts["webhook"]>["certificate"];
  if ("found" in secret && isRecord(secret.found.data) && typeof secret.found.data["tls.crt"] === "string") {
    try {
      const served = new X509Certificate(Buffer.from(secret.found.data["tls.crt"], "base64"));
      const hooks = "found" in configuration && Array.isArray(configuration.found.webhooks) ? configuration.found.webhooks : [];
      const bundle = hooks.map((hook) => (isRecord(hook) && isRecord(hook.clientConfig) ? text(hook.clientConfig.caBundle) : undefined)).find((value) => value !== undefined);
      const verifies = bundle !== undefined && bundle !== "" && caCertificates(Buffer.from(bundle, "base64").toString("utf8")).some((ca) => served.checkIssued(ca) && served.verify(ca.publicKey));
      const dnsNames = (served.subjectAltName ?? "").split(", ").filter((name) => name.startsWith("DNS:")).map((name) => name.slice(4));
      certificate = { verifiesWithCaBundle: verifies, dnsNames, notAfter: Date.parse(served.validTo) };
    } catch (error) {
      certificate = { error: `the Secret ${WEBHOOK}-tls does not hold a certificate: ${(error as Error).message}` };
    }
  } else {
    certificate = { error: "error" in secret ? secret.error : `no Secret ${namespace}/${WEBHOOK}-tls with tls.crt: is cert-manager installed, and the Certificate Ready?` };
  }
  return { configuration, deployment, certificate };
}

function caCertificates(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block));
}

/** GET and POST on the API server of the kubeconfig, each bounded in time and size (uninstall lists with it too). */
export async function connect(source: KubeconfigSource): Promise<{ get: Get; post: Post }> {
  const client = await loadKubernetesClient();
  const config = new client.KubeConfig();
  if (source.kind === "in-cluster") config.loadFromCluster();
  else if (source.paths.length === 1) config.loadFromFile(source.paths[0]!);
  else config.loadFromDefault();
  const server = config.getCurrentCluster()?.server;
  if (server === undefined) throw new Error("the kubeconfig has no current cluster");
  const request = async (method: string, path: string, body?: unknown) => {
    const options: https.RequestOptions = { method, headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }) }, timeout: TIMEOUT_MS };
    await config.applyToHTTPSOptions(options);
    return new Promise<{ status: number; body: unknown }>((resolve, reject) => {
      const call = https.request(new URL(path, server), options, (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) call.destroy(new Error(`the answer to ${method} ${path} is larger than ${MAX_ANSWER_BYTES} bytes`));
          else chunks.push(chunk);
        });
        response.on("end", () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            parsed = undefined;
          }
          resolve({ status: response.statusCode ?? 0, body: parsed });
        });
      });
      call.on("timeout", () => call.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
      call.on("error", reject);
      call.end(body === undefined ? undefined : JSON.stringify(body));
    });
  };
  return { get: (path) => request("GET", path), post: (path, body) => request("POST", path, body) };
}

