// Kubernetes access for claims, Reference mode and the sweep. In a cluster the service account
// (its token file, followed as the kubelet rotates it, and its CA) is all it takes, read here, and
// so is a plain kubeconfig (a server, its CA data, a token); @kubernetes/client-node (~450 ms to
// import, ~60 MiB) is loaded only for a kubeconfig that needs what only the client does (exec and
// auth-provider plugins, proxy-url, client certificates): the CLI and out-of-cluster runs. Events
// that are not about finished jobs never touch the API.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import type { RequestOptions as HttpsOptions } from "node:https";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { takeOverCredentials, tokenFileCredentials, type Credential, type CredentialSource } from "./kube-credentials.js";
import type { Logger } from "./log.js";
import { noMetrics, statusClass, type Metrics } from "./metrics.js";
import { isNamespaceName, isPodName, isRecord, type Pod } from "../jobs/pod.js";

/** In a cluster: the API server's Service (host as Kubernetes sets it, an IPv6 literal without brackets) and the service account folder. */
export type KubeconfigSource = { readonly kind: "in-cluster"; readonly host: string; readonly port: string; readonly account: string } | { readonly kind: "files"; readonly paths: readonly string[] };

/** Where the kubelet mounts the pod's service account: token, ca.crt, namespace. */
export const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/** In-cluster configuration, else KUBECONFIG, else ~/.kube/config; undefined when there is none. */
export function findKubeconfig(env: Readonly<Record<string, string | undefined>>, exists: (path: string) => boolean = existsSync, account = SERVICE_ACCOUNT): KubeconfigSource | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host !== undefined && host !== "" && exists(join(account, "token"))) return { kind: "in-cluster", host, port: env.KUBERNETES_SERVICE_PORT || "443", account };
  const listed = (env.KUBECONFIG ?? "").split(delimiter).filter((path) => path !== "" && exists(path));
  if (listed.length > 0) return { kind: "files", paths: listed };
  const fallback = join(env.HOME ?? homedir(), ".kube", "config");
  return exists(fallback) ? { kind: "files", paths: [fallback] } : undefined;
}

export function describeKubeconfig(source: KubeconfigSource | undefined): string {
  if (source === undefined) return "none";
  return source.kind === "in-cluster" ? "in-cluster" : source.paths.join(delimiter);
}

/** A refused or failed call, with what was asked so a log line can say which permission is missing. */
export class KubernetesError extends Error {
  override readonly name = "KubernetesError";
  constructor(
    /** The HTTP status the API server answered, or undefined when it could not be reached or did not answer in time. */
    readonly status: number | undefined,
    readonly verb: "get" | "list" | "watch" | "patch" | "create",
    readonly namespace: string,
    message: string,
    /** The API server's Retry-After (429), in whole seconds. */
    readonly retryAfterSeconds?: number,
    /** No answer within the time limit (or the function is stopping). */
    readonly timedOut = false,
  ) {
    super(message);
  }
}

export interface ConnectOptions {
  /** Time limit of one call; a call that takes longer fails as "cannot reach". */
  readonly timeoutMs: number;
  /** Aborted when the function must stop: calls in flight end at once. */
  readonly signal?: AbortSignal;
  readonly metrics?: Metrics;
}

export interface PodPage {
  readonly items: readonly Pod[];
  readonly continue?: string;
}

export interface PatchOptions {
  /** false: the pod the API server answers is not parsed (the promise resolves with an empty object). */
  readonly answer?: false;
}

export interface PodApi {
  /** The pod, or undefined when it does not exist (404). */
  read(namespace: string, name: string): Promise<Pod | undefined>;
  list(namespace: string, page: { readonly limit: number; readonly continue?: string; readonly labelSelector?: string }): Promise<PodPage>;
  /**
   * A JSON merge patch (RFC 7386); a metadata.resourceVersion in it makes it conditional (409 when
   * stale). Resolves with the pod as patched; with `{ answer: false }`, with nothing: the answer (a
   * whole pod) is read but not parsed, for the writes whose caller needs only that they were made.
   */
  patch(namespace: string, name: string, patch: object, options?: PatchOptions): Promise<Pod>;
}

/** What the API server said of a bearer token (TokenReview), for the audience asked about. */
export type TokenVerdict =
  | { readonly authenticated: true; readonly user: string; readonly audiences: readonly string[] }
  | { readonly authenticated: false; readonly reason: string };

export interface TokenReviewer {
  /** Asks the API server whether `token` is valid for `audience`; throws KubernetesError when it cannot answer. */
  review(token: string, audience: string): Promise<TokenVerdict>;
}

/** What bounds a pod's resources in a namespace (LimitRanges, ResourceQuotas with their status), as the API server serialises them. */
export interface PolicyReader {
  policies(namespace: string): Promise<{ readonly limitRanges: readonly unknown[]; readonly quotas: readonly unknown[] }>;
}

/** The two kinds of namespace policy the webhook reads. */
export type PolicyKind = "limitranges" | "resourcequotas";

/** One kind of namespace policy, LISTed then WATCHed (the webhook's cache: adjust/policy-cache.ts). */
export interface PolicyWatcher {
  /** The items as the API server serialises them, and the list's resourceVersion (where a watch starts). */
  listPolicy(namespace: string, kind: PolicyKind): Promise<{ readonly items: readonly unknown[]; readonly resourceVersion: string }>;
  /**
   * A watch from `resourceVersion` (with bookmarks) that the API server ends after `seconds`: each
   * line of the answer (one event) to `onLine`. Resolves when the server ends it; rejects with a
   * KubernetesError for a status that is not 2xx (410: the version is gone, LIST again), when
   * nothing at all arrives for `idleMs`, when `onLine` throws, or when `signal` is aborted.
   */
  watchPolicy(namespace: string, kind: PolicyKind, watch: { readonly resourceVersion: string; readonly seconds: number; readonly idleMs: number; readonly signal: AbortSignal }, onLine: (line: string) => void): Promise<void>;
}

/** Pods, tokens and namespace policies through one connection. */
export type KubernetesApi = PodApi & TokenReviewer & PolicyReader & PolicyWatcher;

/** PodApi.list of this "namespace" lists the pods of every namespace (`release` does: it needs no install flags). */
export const ALL_NAMESPACES = "*";

/**
 * Names go into the request path: "", "." and ".." would turn GET pods/{name} into a LIST, or a
 * PATCH of the pod into a PATCH of the Namespace. Refused before any request.
 */
function checkNames(verb: KubernetesError["verb"], namespace: string, name?: string): void {
  if (!isNamespaceName(namespace)) throw new KubernetesError(undefined, verb, "(invalid)", `refused to ${verb} pods: ${JSON.stringify(String(namespace).slice(0, 64))} is not a namespace name`);
  if (name !== undefined && !isPodName(name)) throw new KubernetesError(undefined, verb, namespace, `refused to ${verb} a pod: ${JSON.stringify(String(name).slice(0, 64))} is not a pod name`);
}

let clientModule: Promise<typeof import("@kubernetes/client-node")> | undefined;
/** Starts (once) loading the client; every caller shares the same import. */
export function loadKubernetesClient(): Promise<typeof import("@kubernetes/client-node")> {
  return (clientModule ??= import("@kubernetes/client-node"));
}

/** Loads ahead what the first call of `source` will need: node:https, and the client for a kubeconfig that is not plain. */
export async function preloadKubernetes(source: KubeconfigSource): Promise<unknown> {
  return source.kind === "in-cluster" || (await plainFile(source)) !== undefined ? import("node:https") : loadKubernetesClient();
}

/** A PodApi that connects on its first call; every call has a time limit and reuses connections. */
export function connectKubernetes(source: KubeconfigSource, options: ConnectOptions): KubernetesApi {
  let connecting: Promise<Connection> | undefined;
  const connection = () => (connecting ??= connect(source, options));
  const metrics = options.metrics ?? noMetrics;
  const pods = measured(metrics, {
    async read(namespace, name) {
      checkNames("get", namespace, name);
      const { request } = await connection();
      try {
        return (await request("GET", podPath(namespace, name))) as Pod;
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw refused(error, "get", namespace, `pods/${name}`, options.timeoutMs);
      }
    },
    async list(namespace, page) {
      if (namespace !== ALL_NAMESPACES) checkNames("list", namespace);
      const { request } = await connection();
      const query = new URLSearchParams({ limit: String(page.limit) });
      if (page.continue !== undefined) query.set("continue", page.continue);
      if (page.labelSelector !== undefined) query.set("labelSelector", page.labelSelector);
      try {
        const path = namespace === ALL_NAMESPACES ? "/api/v1/pods" : `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
        const list = (await request("GET", `${path}?${query}`)) as { items?: unknown; metadata?: { continue?: unknown } };
        const items = Array.isArray(list.items) ? (list.items as Pod[]) : [];
        const next = list.metadata?.continue;
        return { items, ...(typeof next === "string" && next !== "" ? { continue: next } : {}) };
      } catch (error) {
        throw refused(error, "list", namespace, "pods", options.timeoutMs);
      }
    },
    async patch(namespace, name, patch, patchOptions) {
      checkNames("patch", namespace, name);
      const { request } = await connection();
      try {
        return ((await request("PATCH", podPath(namespace, name), JSON.stringify(patch), patchOptions?.answer !== false)) ?? {}) as Pod;
      } catch (error) {
        throw refused(error, "patch", namespace, `pods/${name}`, options.timeoutMs);
      }
    },
  });
  return {
    ...pods,
    async policies(namespace) {
      checkNames("list", namespace);
      const { request } = await connection();
      const started = performance.now();
      const items = (list: unknown): unknown[] => (isRecord(list) && Array.isArray(list.items) ? (list.items as unknown[]) : []);
      try {
        const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
        const [limitRanges, quotas] = await Promise.all([request("GET", `${base}/limitranges`), request("GET", `${base}/resourcequotas`)]);
        metrics.kubernetesRequest("list", "2xx", (performance.now() - started) / 1000);
        return { limitRanges: items(limitRanges), quotas: items(quotas) };
      } catch (error) {
        const failure = refused(error, "list", namespace, "limitranges and resourcequotas", options.timeoutMs);
        metrics.kubernetesRequest("list", statusClass(failure.status, failure.timedOut ? "timeout" : "error"), (performance.now() - started) / 1000);
        throw failure;
      }
    },
    async listPolicy(namespace, kind) {
      checkNames("list", namespace);
      const { request } = await connection();
      try {
        const list = (await request("GET", `/api/v1/namespaces/${encodeURIComponent(namespace)}/${kind}`)) as { items?: unknown; metadata?: { resourceVersion?: unknown } };
        const version = list.metadata?.resourceVersion;
        return { items: Array.isArray(list.items) ? (list.items as unknown[]) : [], resourceVersion: typeof version === "string" ? version : "" };
      } catch (error) {
        throw refused(error, "list", namespace, kind, options.timeoutMs);
      }
    },
    async watchPolicy(namespace, kind, watch, onLine) {
      checkNames("watch", namespace);
      const { stream } = await connection();
      const query = new URLSearchParams({ watch: "1", resourceVersion: watch.resourceVersion, allowWatchBookmarks: "true", timeoutSeconds: String(watch.seconds) });
      try {
        await stream(`/api/v1/namespaces/${encodeURIComponent(namespace)}/${kind}?${query}`, watch.idleMs, watch.signal, onLine);
      } catch (error) {
        throw refused(error, "watch", namespace, kind, watch.idleMs);
      }
    },
    async review(token, audience) {
      const { request } = await connection();
      const started = performance.now();
      try {
        const answer = (await request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences: [audience] } }))) as {
          status?: { authenticated?: unknown; error?: unknown; user?: { username?: unknown }; audiences?: unknown };
        };
        metrics.kubernetesRequest("create", "2xx", (performance.now() - started) / 1000);
        // The answer repeats the token in spec.token: only status is read, and nothing of it is logged raw.
        const status = answer.status;
        if (status?.authenticated !== true) return { authenticated: false, reason: status?.error ? "the API server did not accept the token" : "the token is not valid" };
        return { authenticated: true, user: String(status.user?.username ?? ""), audiences: Array.isArray(status.audiences) ? status.audiences.map(String) : [] };
      } catch (error) {
        const failure = refused(error, "create", "(cluster)", "tokenreviews", options.timeoutMs);
        metrics.kubernetesRequest("create", statusClass(failure.status, failure.timedOut ? "timeout" : "error"), (performance.now() - started) / 1000);
        throw failure;
      }
    },
  };
}

/** Each call timed and counted by verb and status class (a read that finds nothing was a 404). */
function measured(metrics: Metrics, api: PodApi): PodApi {
  const time = async <T>(verb: KubernetesError["verb"], call: () => Promise<T>, found: (result: T) => boolean = () => true): Promise<T> => {
    const started = performance.now();
    try {
      const result = await call();
      metrics.kubernetesRequest(verb, found(result) ? "2xx" : "4xx", (performance.now() - started) / 1000);
      return result;
    } catch (error) {
      const status = error instanceof KubernetesError ? error.status : undefined;
      const timedOut = error instanceof KubernetesError && error.timedOut;
      metrics.kubernetesRequest(verb, statusClass(status, timedOut ? "timeout" : "error"), (performance.now() - started) / 1000);
      throw error;
    }
  };
  return {
    read: (namespace, name) => time("get", () => api.read(namespace, name), (pod) => pod !== undefined),
    list: (namespace, page) => time("list", () => api.list(namespace, page)),
    patch: (namespace, name, patch, patchOptions) => time("patch", () => api.patch(namespace, name, patch, patchOptions)),
  };
}

/**
 * A call of the API: its JSON answer, or a thrown { code, headers } for a status that is not 2xx.
 * A PATCH body is a JSON merge patch, a POST body an object. With `parse` false a 2xx answer is
 * read to its end, not kept, and the call resolves with undefined.
 */
type Request = (method: "GET" | "PATCH" | "POST", path: string, body?: string, parse?: boolean) => Promise<unknown>;
interface Connection {
  /** Every call: node:https, authenticated as connect says. */
  readonly request: Request;
  /** A GET whose answer is read line by line as it arrives (a watch); rejects like a request, or after idleMs without a byte. */
  readonly stream: (path: string, idleMs: number, signal: AbortSignal, onLine: (line: string) => void) => Promise<void>;
}

const podPath = (namespace: string, name: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
/** The largest answer read (a page of 100 pods is about 1 MB). */
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;
/** The longest line of a watch (one event, one object). */
const MAX_LINE_BYTES = 1024 * 1024;

/** How calls reach and authenticate to the API server, from the service account or from a kubeconfig. */
interface Authentication {
  readonly server: ReturnType<typeof apiEndpoint>;
  /** The agent is the one `apply` sets (a kubeconfig's proxy-url: it tunnels through the proxy, as `check`'s calls do). */
  readonly proxied: boolean;
  /** The bearer token or plugin's certificate (kube-credentials.ts: read again as it rotates), or undefined when `apply` sets all there is. */
  readonly credentials: CredentialSource | undefined;
  /** Adds what a call needs besides that credential: CA, client certificate, TLS server name, proxy agent. */
  apply(options: HttpsOptions): Promise<void>;
}

/**
 * In a cluster: the Service's address, the token file (read again every second and after a 401,
 * as the kubelet rotates it) and the CA beside it. No client: this is what its loadFromCluster
 * and applyToHTTPSOptions do for a service account, always over https.
 */
function serviceAccount(source: Extract<KubeconfigSource, { kind: "in-cluster" }>): Authentication {
  const hostname = source.host.replace(/^\[(.*)\]$/, "$1");
  if (!/^[0-9]{1,5}$/.test(source.port) || Number(source.port) < 1 || Number(source.port) > 65535) throw new Error(`KUBERNETES_SERVICE_PORT is not a port (${JSON.stringify(source.port.slice(0, 16))})`);
  return {
    server: { protocol: "https:", hostname, port: source.port, basePath: "" },
    proxied: false,
    credentials: tokenFileCredentials(join(source.account, "token")),
    apply: async (options) => {
      options.ca = await readFile(join(source.account, "ca.crt"), "utf8");
    },
  };
}

/** What a plain kubeconfig says: an https server, its CA (or the system's), a bearer token. */
export interface PlainKubeconfig {
  readonly server: string;
  readonly ca?: string;
  readonly servername?: string;
  readonly token: string;
}

const only = (value: unknown, keys: readonly string[]): value is Record<string, unknown> => isRecord(value) && Object.keys(value).every((key) => keys.includes(key));

/**
 * A kubeconfig (parsed) whose current context's cluster has only an https server, its CA data
 * and a TLS server name, and whose user has only a token: what the bench's stand-in and many
 * CI kubeconfigs are, done without the client. Anything more (plugins, proxy-url, certificate
 * files, client certificates, insecure-skip-tls-verify, several entries of one name): undefined.
 */
export function plainKubeconfig(config: unknown): PlainKubeconfig | undefined {
  if (!isRecord(config) || typeof config["current-context"] !== "string") return undefined;
  const named = (list: unknown, name: unknown, key: string): unknown => {
    const found = Array.isArray(list) ? list.filter((entry) => isRecord(entry) && entry.name === name) : [];
    return found.length === 1 && only(found[0], ["name", key]) ? found[0][key] : undefined;
  };
  const context = named(config.contexts, config["current-context"], "context");
  if (!only(context, ["cluster", "user", "namespace"])) return undefined;
  const cluster = named(config.clusters, context.cluster, "cluster");
  const user = named(config.users, context.user, "user");
  if (!only(cluster, ["server", "certificate-authority-data", "tls-server-name"]) || !only(user, ["token"])) return undefined;
  const { server, "certificate-authority-data": caData, "tls-server-name": servername } = cluster;
  if (typeof server !== "string" || !server.startsWith("https://") || typeof user.token !== "string" || !/^[\x21-\x7e]{1,16384}$/.test(user.token)) return undefined;
  if ((caData !== undefined && typeof caData !== "string") || (servername !== undefined && (typeof servername !== "string" || servername === ""))) return undefined;
  return { server, token: user.token, ...(caData === undefined ? {} : { ca: Buffer.from(caData, "base64").toString("utf8") }), ...(servername === undefined ? {} : { servername }) };
}

/** A plain kubeconfig's calls: its server, its CA, its token; no client. */
function plainAuthentication(plain: PlainKubeconfig): Authentication {
  const credential = { token: plain.token };
  return {
    server: apiEndpoint(plain.server),
    proxied: false,
    credentials: { current: () => Promise.resolve(credential), rejected: () => {} },
    apply: async (options) => {
      if (plain.ca !== undefined) options.ca = plain.ca;
      if (plain.servername !== undefined) options.servername = plain.servername;
    },
  };
}

/** The one kubeconfig file, parsed, when it is plain; undefined otherwise (and when it cannot be read: the client says why). */
async function plainFile(source: Extract<KubeconfigSource, { kind: "files" }>): Promise<PlainKubeconfig | undefined> {
  if (source.paths.length !== 1) return undefined;
  try {
    const { parse } = await import("yaml");
    return plainKubeconfig(parse(await readFile(source.paths[0]!, "utf8")));
  } catch {
    return undefined;
  }
}

/**
 * A kubeconfig, read by the client, which authenticates: it knows every auth form. Its own request
 * path (its serializer both ways, its middleware chain) cost 971 µs of CPU per pod PATCH against
 * 248 µs for node:https with the same options, measured by bench/kube-client.ts; the webhook's
 * two policy LISTs 591 µs against 172 µs. So calls go through node:https with what the client
 * applies for each request (KubeConfig.applyToHTTPSOptions: headers, CA, client certificate).
 */
async function kubeconfig(source: Extract<KubeconfigSource, { kind: "files" }>, options: ConnectOptions): Promise<Authentication> {
  const client = await loadKubernetesClient();
  const config = new client.KubeConfig();
  if (source.paths.length === 1) config.loadFromFile(source.paths[0]!);
  else config.loadFromDefault(); // several files in KUBECONFIG: let the client merge them
  const cluster = config.getCurrentCluster();
  if (cluster === null) throw new Error("the kubeconfig names no current cluster");
  return {
    server: apiEndpoint(cluster.server),
    proxied: cluster.proxyUrl !== undefined && cluster.proxyUrl !== null && cluster.proxyUrl !== "",
    credentials: takeOverCredentials(config, options),
    apply: (applied) => config.applyToHTTPSOptions(applied),
  };
}

/** Pods, policies and TokenReviews over one keep-alive agent; the answers are the API server's JSON as it sent it. */
async function connect(source: KubeconfigSource, options: ConnectOptions): Promise<Connection> {
  const plain = source.kind === "files" ? await plainFile(source) : undefined;
  const { server, proxied, credentials, apply } = source.kind === "in-cluster" ? serviceAccount(source) : plain !== undefined ? plainAuthentication(plain) : await kubeconfig(source, options);
  const { default: https } = await import("node:https"); // loaded with the first call (or preloadKubernetes), not at start
  const transport = server.protocol === "http:" ? http : https;

  // One keep-alive agent for as long as the TLS material stays the same (a rotated CA or client certificate makes a new one).
  let agent: { key: string; agent: http.Agent; for: HttpsOptions } | undefined;
  const agentFor = (applied: HttpsOptions): http.Agent => {
    if (agent?.for === applied) return agent.agent;
    const tls = { ca: applied.ca, cert: applied.cert, key: applied.key, pfx: applied.pfx, passphrase: applied.passphrase, rejectUnauthorized: applied.rejectUnauthorized, servername: applied.servername };
    const key = Object.values(tls).map(String).join("\n");
    if (agent?.key !== key) {
      agent?.agent.destroy();
      const defined = Object.fromEntries(Object.entries(tls).filter(([, value]) => value !== undefined));
      agent = { key, agent: proxied ? (applied.agent as http.Agent) : new transport.Agent({ keepAlive: true, ...defined }), for: applied };
    }
    agent.for = applied;
    return agent.agent;
  };
  // What is applied (the CA read, a client's Agent built) is reused for a second; the credential
  // that rotates is read again within that second, and at once after a 401.
  let authenticated: { at: number; options: Promise<HttpsOptions> } | undefined;
  const credentialOf = new WeakMap<HttpsOptions, Credential>();
  const authOptions = (): Promise<HttpsOptions> => {
    if (authenticated === undefined || performance.now() - authenticated.at > 1000) {
      const current: NonNullable<typeof authenticated> = {
        at: performance.now(),
        options: (async () => {
          const credential = await credentials?.current();
          // Set first, so that the client's agent (a proxy's, with proxy-url) carries a plugin's client certificate.
          const applied: HttpsOptions = credential === undefined ? {} : { headers: credential.token === undefined ? {} : { Authorization: `Bearer ${credential.token}` }, ...(credential.cert === undefined ? {} : { cert: credential.cert, key: credential.key }) };
          await apply(applied);
          if (credential !== undefined) credentialOf.set(applied, credential);
          return applied;
        })(),
      };
      authenticated = current;
      current.options.catch(() => {
        if (authenticated === current) authenticated = undefined;
      });
    }
    return authenticated.options;
  };
  /** A 401 to a call made with `applied`: its credential is read again, and so is what is applied. */
  const rejected = (applied: HttpsOptions) => {
    const credential = credentialOf.get(applied);
    if (credential !== undefined) credentials?.rejected(credential);
    authenticated = undefined;
  };
  // The time limit covers everything a call waits for: its credential (an exec plugin may hang) and the answer.
  const request: Request = (method, path, body, parse = true) =>
    new Promise((resolve, reject) => {
      let sent: http.ClientRequest | undefined;
      let settled = false;
      // One timer and one listener a call: AbortSignal.timeout and AbortSignal.any cost 28 µs together.
      const end = (error: Error) => (sent === undefined ? reject(error) : sent.destroy(error));
      const timer = setTimeout(() => end(Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { name: "TimeoutError" })), options.timeoutMs);
      const stopping = () => end(Object.assign(new Error("the function is stopping"), { name: "AbortError" }));
      options.signal?.addEventListener("abort", stopping, { once: true });
      const settle = <T>(settler: (value: T) => void) => (value: T) => {
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", stopping);
        settler(value);
      };
      resolve = settle(resolve);
      reject = settle(reject);
      if (options.signal?.aborted === true) return stopping();
      // A call that ended while it waited for its credential sends nothing.
      authOptions().then((applied) => settled || send(applied), reject);
      const send = (applied: HttpsOptions) => {
        const headers: Record<string, string | number> = { ...(applied.headers as Record<string, string>), accept: "application/json" };
        if (body !== undefined) Object.assign(headers, { "content-type": method === "PATCH" ? "application/merge-patch+json" : "application/json", "content-length": Buffer.byteLength(body) });
        sent = transport.request({ protocol: server.protocol, hostname: server.hostname, port: server.port, method, path: `${server.basePath}${path}`, headers, agent: agentFor(applied), ...(applied.auth === undefined ? {} : { auth: applied.auth }) }, (response: http.IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) response.destroy(new Error(`an answer over ${MAX_ANSWER_BYTES} bytes`));
            // Kept only to be parsed: an error says all in its status, and some callers need no answer.
            else if (parse) chunks.push(chunk);
          });
          response.on("error", reject);
          response.on("close", () => {
            if (!response.complete) reject(new Error("the answer was cut off"));
          });
          response.on("end", () => {
            const status = response.statusCode ?? 0;
            if (status === 401) rejected(applied);
            if (status < 200 || status > 299) return reject(Object.assign(new Error(`HTTP ${status}`), { code: status, headers: response.headers }));
            if (!parse) return resolve(undefined);
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
            } catch {
              reject(new Error(`the answer to ${method} is not JSON`));
            }
          });
        });
        sent.on("error", reject);
        sent.end(body);
      };
    });

  const stream: Connection["stream"] = async (path, idleMs, signal, onLine) => {
    const applied = await authOptions();
    await new Promise<void>((resolve, reject) => {
      const headers = { ...(applied.headers as Record<string, string>), accept: "application/json" };
      const sent = transport.request({ protocol: server.protocol, hostname: server.hostname, port: server.port, method: "GET", path: `${server.basePath}${path}`, headers, agent: agentFor(applied), ...(applied.auth === undefined ? {} : { auth: applied.auth }) });
      let timer: NodeJS.Timeout | undefined;
      const idle = () => {
        clearTimeout(timer);
        timer = setTimeout(() => sent.destroy(Object.assign(new Error(`nothing within ${idleMs} ms`), { name: "TimeoutError" })), idleMs);
      };
      const stopping = () => sent.destroy(Object.assign(new Error("the webhook is stopping"), { name: "AbortError" }));
      const done = (error?: Error) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", stopping);
        if (error === undefined) resolve();
        else reject(error);
      };
      signal.addEventListener("abort", stopping, { once: true });
      if (signal.aborted) stopping();
      idle();
      sent.on("error", done);
      sent.on("response", (response: http.IncomingMessage) => {
        const status = response.statusCode ?? 0;
        if (status === 401) rejected(applied);
        if (status < 200 || status > 299) {
          response.resume();
          return sent.destroy(Object.assign(new Error(`HTTP ${status}`), { code: status, headers: response.headers }));
        }
        let pending = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          idle();
          const lines = (pending + chunk).split("\n");
          pending = lines.pop() ?? "";
          // Settled first: what the connection's end reports later changes nothing.
          const fail = (error: Error) => (done(error), sent.destroy());
          if (pending.length > MAX_LINE_BYTES) return fail(new Error(`a watch event over ${MAX_LINE_BYTES} bytes`));
          try {
            for (const line of lines) if (line.trim() !== "") onLine(line);
          } catch (error) {
            fail(error as Error);
          }
        });
        response.on("error", done);
        response.on("close", () => response.complete || done(new Error("the watch was cut off")));
        response.on("end", () => done());
      });
      sent.end();
    });
  };

  return { request, stream };
}

/**
 * Where requests go, as node:http takes it: URL.hostname keeps the brackets of an IPv6 literal
 * ("[::1]"), which node:http would look up as a host name; the server URL's path (a proxy's
 * /k8s/clusters/<id>) prefixes every request path.
 */
export function apiEndpoint(server: string): { protocol: string; hostname: string; port: string; basePath: string } {
  const url = new URL(server);
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error(`the kubeconfig's server is not an https:// URL (${JSON.stringify(url.protocol.slice(0, 16))})`);
  return { protocol: url.protocol, hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: url.port, basePath: url.pathname.replace(/\/+$/, "") };
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

function refused(error: unknown, verb: KubernetesError["verb"], namespace: string, what: string, timeoutMs: number): KubernetesError {
  const status = statusOf(error);
  if (status !== undefined) {
    const hint = retryAfterOf(error);
    return new KubernetesError(status, verb, namespace, `Kubernetes answered ${status} to ${verb} ${what} in namespace ${namespace}`, hint);
  }
  const name = (error as { name?: unknown }).name;
  const timedOut = name === "AbortError" || name === "TimeoutError";
  const reason = timedOut ? `no answer within ${timeoutMs} ms (or the function is stopping)` : String((error as Error).message);
  return new KubernetesError(undefined, verb, namespace, `cannot reach Kubernetes to ${verb} ${what} in namespace ${namespace}: ${reason}`, undefined, timedOut);
}

/** Retry-After of a 429 (delta-seconds only, as the API server sends it), 1–300 s. */
function retryAfterOf(error: unknown): number | undefined {
  const headers = (error as { headers?: Record<string, unknown> }).headers;
  const value = headers?.["retry-after"] ?? headers?.["Retry-After"];
  return typeof value === "string" && /^\s*[0-9]{1,6}\s*$/.test(value) ? Math.min(300, Math.max(1, Number(value))) : undefined;
}

/**
 * Reports refusals (403) without flooding the log: one error line a minute naming the missing
 * permission, with how many calls were refused so far.
 */
export function refusalReporter(log: Logger, now: () => number = Date.now): { report(error: KubernetesError): void; readonly count: () => number } {
  let count = 0;
  let lastLogged = -Infinity;
  return {
    count: () => count,
    report(error) {
      count++;
      if (now() - lastLogged < 60_000) return;
      lastLogged = now();
      log.error("Kubernetes refused a call: the function's ServiceAccount lacks a permission", {
        ...(error.verb === "create"
          ? { missing: "create tokenreviews (authentication.k8s.io, cluster-wide)", fix: "`servo-k8s-multijob manifests --event-auth` writes that ClusterRole" }
          : { missing: `${error.verb} pods`, namespace: error.namespace, fix: "grant get, list and patch on pods in this namespace: `servo-k8s-multijob manifests` writes that Role" }),
        refusals: count,
      });
    },
  };
}
