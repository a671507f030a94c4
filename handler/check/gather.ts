// `check`, the part that reads the cluster: every fact checks.ts judges, read through connect.ts's
// bounded calls. A call that fails is a fact too (why it failed), never an exception. Nothing it
// reads is printed raw: report.ts escapes and clips every line.
import { X509Certificate } from "node:crypto";
import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { DEFAULT_OPTUNE_URL } from "../edges/config.js";
import { isRecord, text } from "../jobs/pod.js";
import { FUNCTION, OPENFAAS_GATEWAY, SOURCE, WEBHOOK } from "../deploy/manifests.js";
import { accessQuestions, installQuestions, type CheckOptions, type ClusterFacts, type Read } from "./checks.js";
import type { Answer, Api, Limits } from "./connect.js";

/** With --optune: sends one HELLO, as the function does at start (it is visible in Optune). */
export type SayHello = (url: string) => Promise<true | string>;

/** Reaches Optune's origin (and says HELLO when asked): what `optune` in the facts says. */
export type ProbeOptune = (url: string) => Promise<NonNullable<ClusterFacts["optune"]>>;

/** A call that failed, as an answer: status 0, and why as the body. */
const failure = (error: Error): Answer => ({ status: 0, body: error.message });

/** The API server's answer to a (Self)SubjectAccessReview: allowed or not, or why there is no answer. */
async function askReview(post: Api["post"], review: { readonly kind: string }): Promise<boolean | string> {
  const answer = await post(`/apis/authorization.k8s.io/v1/${review.kind.toLowerCase()}s`, review).catch(failure);
  if (answer.status === 201 && isRecord(answer.body) && isRecord(answer.body.status)) return answer.body.status.allowed === true;
  return answer.status === 0 ? String(answer.body) : `${review.kind} answered ${answer.status}`;
}

/** A fact for an API server that could not be asked at all. */
export function unreachable(why: string): ClusterFacts {
  return { server: { error: why }, apis: [], access: [], service: { absent: true }, pingSource: { absent: true }, sources: {}, pods: {} };
}

export async function gatherFacts(api: Api, options: CheckOptions, probeOptune: ProbeOptune, configuredOptuneUrl?: string): Promise<ClusterFacts> {
  const { get, post } = api;
  const { namespace, watch, target, webhook: withWebhook } = options.install;
  const version = await get("/version").catch(failure);
  if (version.status !== 200) return unreachable(version.status === 0 ? `cannot reach it: ${String(version.body)}` : `it answered ${version.status} to GET /version`);
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

  const apiList = await read("/apis");
  const apis = "found" in apiList ? servedApis(apiList.found) : { error: "error" in apiList ? apiList.error : "GET /apis answered 404" };
  const server = { version: (isRecord(version.body) ? text(version.body.gitVersion) : undefined) ?? "unknown version" };
  if (options.pre === true) return { server, apis, access: [], service: { absent: true }, pingSource: { absent: true }, sources: {}, pods: {}, prerequisites: await prerequisiteFacts(read, post, options) };
  const access = await Promise.all(
    accessQuestions(options.install).map(async (question) => {
      const [, , saNamespace] = question.subject.split(":");
      const review = { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec: { user: question.subject, groups: ["system:serviceaccounts", `system:serviceaccounts:${saNamespace}`, "system:authenticated"], resourceAttributes: { namespace: question.namespace, verb: question.verb, resource: question.resource, group: question.group } } };
      return { ...question, allowed: await askReview(post, review) };
    }),
  );
  const service = target === "knative" ? await read(`/apis/serving.knative.dev/v1/namespaces/${namespace}/services/${FUNCTION}`) : ({ absent: true } as const);
  const pingSource = target === "knative" ? await read(`/apis/sources.knative.dev/v1/namespaces/${namespace}/pingsources/servo-sweep`) : ({ absent: true } as const);
  const sources: Record<string, Read> = {};
  const pods: Record<string, readonly Record<string, unknown>[] | { error: string }> = {};
  for (const watched of watch) {
    sources[watched] = await read(`/apis/sources.knative.dev/v1/namespaces/${watched}/apiserversources/${SOURCE}`);
    const list = await read(`/api/v1/namespaces/${watched}/pods?limit=500`);
    pods[watched] = "found" in list ? (Array.isArray(list.found.items) ? list.found.items.filter(isRecord) : []) : { error: "error" in list ? list.error : "no such namespace" };
  }
  const tokenSecret = "found" in service ? await secretFacts(read, namespace, service.found) : undefined;
  const appIdSpec = "found" in service ? envOf(service.found, "OPTUNE_APP_ID") : undefined;
  const functionUrl = "found" in service ? envOf(service.found, "OPTUNE_URL") : undefined;
  const optune = { ...(await probeOptune(configuredOptuneUrl ?? functionUrl ?? DEFAULT_OPTUNE_URL)), ...(configuredOptuneUrl !== undefined && functionUrl !== undefined && functionUrl !== configuredOptuneUrl ? { functionUrl } : {}) };
  const webhook = withWebhook ? await webhookFacts(read, namespace) : undefined;
  return { server, apis, access, service, pingSource, sources, pods, optune, ...(appIdSpec === undefined ? {} : { appIdSpec }), ...(tokenSecret === undefined ? {} : { tokenSecret }), ...(webhook === undefined ? {} : { webhook }) };
}

/** "group/version" of every API a GET /apis lists. */
function servedApis(list: Record<string, unknown>): string[] {
  const groups = Array.isArray(list.groups) ? list.groups : [];
  return groups.flatMap((group) => (isRecord(group) && Array.isArray(group.versions) ? group.versions.map((version) => text(isRecord(version) ? version.groupVersion : undefined) ?? "") : []));
}

/** With --pre: may this user create what `manifests` writes (SelfSubjectAccessReview), and is OpenFaaS's gateway there. */
async function prerequisiteFacts(read: (path: string) => Promise<Read>, post: Api["post"], options: CheckOptions): Promise<NonNullable<ClusterFacts["prerequisites"]>> {
  const access = await Promise.all(
    installQuestions(options.install).map(async (question) => {
      const review = { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview", spec: { resourceAttributes: { ...(question.namespace === "" ? {} : { namespace: question.namespace }), verb: question.verb, resource: question.resource, group: question.group } } };
      return { ...question, allowed: await askReview(post, review) };
    }),
  );
  if (options.install.target !== "openfaas") return { access };
  const gateway = new URL(OPENFAAS_GATEWAY).hostname.split(".");
  return { access, openfaasGateway: await read(`/api/v1/namespaces/${gateway[1]}/services/${gateway[0]}`) };
}

/** Whether Optune's host resolves and answers (any HTTP status: a GET of the origin, no message), and, when asked, a HELLO. */
export async function probeOptune(url: string, limits: Limits, hello: SayHello | undefined): Promise<NonNullable<ClusterFacts["optune"]>> {
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
  const left = Math.max(0, Math.min(limits.callTimeoutMs, limits.deadline - Date.now()));
  const answers = await new Promise<number | string>((resolve) => {
    const call = (origin.protocol === "http:" ? http : https).request(origin, { method: "GET" }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    const timer = setTimeout(() => call.destroy(new Error(`no answer within ${left} ms`)), left);
    call.on("close", () => clearTimeout(timer));
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
