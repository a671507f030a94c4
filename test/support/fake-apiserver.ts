// A Kubernetes API server for pods, small but speaking the real REST protocol, so the function's
// real @kubernetes/client-node talks to it through a kubeconfig:
// - GET one pod; LIST with limit/continue/labelSelector (a PodList; items without kind, as the
//   API server sends them);
// - PATCH as merge patch, JSON patch or strategic merge patch (415 for any other content type, or
//   for two Content-Type headers); a resourceVersion in the patched object that is no longer the
//   pod's → 409 Conflict;
// - one global resourceVersion that increases on every write; errors as Status objects.
// The kubelet and the controllers are played by update()/remove(); watch() sees every change, as
// an ApiServerSource's informer would.
import http from "node:http";
import { writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Pod } from "../../handler/jobs/pod.js";
import { scratchDir } from "./scratch.js";

export type WatchType = "ADDED" | "MODIFIED" | "DELETED";
type Mutable<T> = { -readonly [K in keyof T]: Mutable<T[K]> };
export type MutablePod = Mutable<Pod> & { metadata: Mutable<NonNullable<Pod["metadata"]>> & Record<string, unknown> } & Record<string, unknown>;

export interface ApiRequest {
  readonly verb: "get" | "list" | "patch" | "review" | "other";
  readonly namespace: string;
  readonly name?: string;
  readonly query: string;
  readonly contentType?: string;
  readonly status: number;
}

export interface FakeApiServer {
  readonly url: string;
  /** A kubeconfig file pointing at this server. */
  readonly kubeconfig: string;
  readonly requests: ApiRequest[];
  /** Verbs answered with 403 Forbidden. */
  readonly forbidden: Set<ApiRequest["verb"]>;
  /** Called after a PATCH is applied; the answer waits for it. */
  onPatched?: (pod: Pod) => void | Promise<void>;
  /** Answers a request instead of the pods: an error status (with headers), or "hang": accept and never answer. */
  fault?: (request: { readonly verb: ApiRequest["verb"]; readonly name?: string; readonly query: string }) => Fault | undefined;
  /** Bearer tokens TokenReview accepts, with the audiences each is valid for (the API server checks the signature; this only looks them up). */
  readonly tokens: Map<string, { readonly user: string; readonly audiences: readonly string[] }>;
  /** TCP connections accepted so far (keep-alive reuses them). */
  readonly connections: () => number;
  create(pod: Pod): Pod;
  update(namespace: string, name: string, change: (pod: MutablePod) => void): Pod;
  remove(namespace: string, name: string): Pod;
  get(namespace: string, name: string): Pod | undefined;
  watch(listener: (type: WatchType, pod: Pod) => void): void;
  close(): Promise<void>;
}

const MEDIA = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
};

export type Fault = "hang" | { readonly status: number; readonly headers?: Readonly<Record<string, string>> };

const REASONS: Record<number, string> = { 403: "Forbidden", 404: "NotFound", 409: "Conflict", 410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable" };

export async function startFakeApiServer(): Promise<FakeApiServer> {
  const pods = new Map<string, MutablePod>(); // "namespace/name" → pod
  const listeners: Array<(type: WatchType, pod: Pod) => void> = [];
  const requests: ApiRequest[] = [];
  const forbidden = new Set<ApiRequest["verb"]>();
  let resourceVersion = 1000;

  const snapshot = (pod: MutablePod): Pod => structuredClone(pod);
  const emit = (type: WatchType, pod: MutablePod) => {
    const copy = snapshot(pod);
    for (const listener of listeners) listener(type, copy);
  };
  const write = (pod: MutablePod) => {
    pod.metadata.resourceVersion = String(++resourceVersion);
  };

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const [path = "", query = ""] = (request.url ?? "").split("?", 2);
      if (request.method === "POST" && path === "/apis/authentication.k8s.io/v1/tokenreviews") return review(Buffer.concat(chunks).toString("utf8"), response);
      const match = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+))?$/.exec(path);
      const namespace = match?.[1] ?? "";
      const name = match?.[2] === undefined ? undefined : decodeURIComponent(match[2]);
      const verb: ApiRequest["verb"] = !match ? "other" : request.method === "GET" ? (name === undefined ? "list" : "get") : request.method === "PATCH" && name !== undefined ? "patch" : "other";
      const contentTypes = request.rawHeaders.filter((_, index) => index % 2 === 0).filter((header) => header.toLowerCase() === "content-type").length;
      const answer = (status: number, body: unknown) => {
        requests.push({ verb, namespace, ...(name === undefined ? {} : { name }), query, ...(request.headers["content-type"] ? { contentType: request.headers["content-type"] } : {}), status });
        response.writeHead(status, { "Content-Type": "application/json" });
        response.end(JSON.stringify(body));
      };

      if (verb === "other") return answer(404, status(404, "NotFound", `the server could not find the requested resource`));
      const fault = fake.fault?.({ verb, ...(name === undefined ? {} : { name }), query });
      if (fault === "hang") return;
      if (fault !== undefined) {
        for (const [header, value] of Object.entries(fault.headers ?? {})) response.setHeader(header, value);
        return answer(fault.status, status(fault.status, REASONS[fault.status] ?? "Unknown", `injected fault ${fault.status}`, name));
      }
      if (forbidden.has(verb)) {
        return answer(403, status(403, "Forbidden", `pods${name ? ` "${name}"` : ""} is forbidden: User "system:serviceaccount:default:servo-k8s-multijob" cannot ${verb} resource "pods" in API group "" in the namespace "${namespace}"`, name));
      }
      if (verb === "list") return answer(200, list(namespace, new URLSearchParams(query)));

      const pod = pods.get(`${namespace}/${name}`);
      if (pod === undefined) return answer(404, status(404, "NotFound", `pods "${name}" not found`, name));
      if (verb === "get") return answer(200, pod);

      const media = (request.headers["content-type"] ?? "").split(";")[0]!.trim();
      if (contentTypes !== 1 || !Object.values(MEDIA).includes(media)) {
        return answer(415, status(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: ${Object.values(MEDIA).join(", ")}`));
      }
      let patch: unknown;
      try {
        patch = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch (error) {
        return answer(400, status(400, "BadRequest", `error decoding patch: ${(error as Error).message}`));
      }
      let patched: MutablePod;
      try {
        patched = (media === MEDIA.json ? applyJsonPatch(pod, patch) : mergePatch(structuredClone(pod), patch)) as MutablePod;
      } catch (error) {
        return answer(422, status(422, "Invalid", (error as Error).message, name));
      }
      // The patched object's resourceVersion is a precondition: it must still be the pod's.
      if (patched.metadata?.resourceVersion !== pod.metadata.resourceVersion) {
        return answer(409, status(409, "Conflict", `Operation cannot be fulfilled on pods "${name}": the object has been modified; please apply your changes to the latest version and try again`, name));
      }
      write(patched);
      pods.set(`${namespace}/${name}`, patched);
      emit("MODIFIED", patched);
      void Promise.resolve(fake.onPatched?.(snapshot(patched))).then(() => answer(200, patched));
    });
  });

  /** TokenReview as the API server answers it: status.authenticated, the audiences asked that the token is valid for, the user. */
  function review(body: string, response: http.ServerResponse): void {
    const spec = (JSON.parse(body) as { spec?: { token?: string; audiences?: string[] } }).spec ?? {};
    const known = fake.tokens.get(spec.token ?? "");
    const asked = spec.audiences ?? [];
    const audiences = known === undefined ? [] : asked.length === 0 ? [...known.audiences] : asked.filter((audience) => known.audiences.includes(audience));
    const status = known !== undefined && audiences.length > 0 ? { authenticated: true, user: { username: known.user }, audiences } : { authenticated: false, error: "invalid bearer token" };
    requests.push({ verb: "review", namespace: "", query: "", status: 201 });
    response.writeHead(201, { "Content-Type": "application/json" });
    response.end(JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec, status }));
  }

  function list(namespace: string, query: URLSearchParams): unknown {
    const selector = query.get("labelSelector");
    const matching = [...pods.values()]
      .filter((pod) => pod.metadata.namespace === namespace && (selector === null || selects(selector, pod.metadata.labels as Record<string, string> | undefined)))
      .sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
    const after = query.get("continue");
    const start = after === null ? 0 : matching.findIndex((pod) => String(pod.metadata.name) > Buffer.from(after, "base64url").toString());
    const rest = start === -1 ? [] : matching.slice(start);
    const limit = Number(query.get("limit") ?? "0");
    const page = limit > 0 ? rest.slice(0, limit) : rest;
    const more = rest.length > page.length;
    return {
      kind: "PodList",
      apiVersion: "v1",
      metadata: {
        resourceVersion: String(resourceVersion),
        ...(more ? { continue: Buffer.from(String(page.at(-1)?.metadata.name)).toString("base64url"), remainingItemCount: rest.length - page.length } : {}),
      },
      items: page.map(({ kind: _kind, apiVersion: _apiVersion, ...item }) => item),
    };
  }

  let connections = 0;
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kubeconfig = writeKubeconfig(url);

  const fake: FakeApiServer = {
    url,
    kubeconfig,
    requests,
    forbidden,
    tokens: new Map(),
    connections: () => connections,
    create(pod) {
      const stored = structuredClone(pod) as MutablePod;
      write(stored);
      pods.set(`${stored.metadata.namespace}/${stored.metadata.name}`, stored);
      emit("ADDED", stored);
      return snapshot(stored);
    },
    update(namespace, name, change) {
      const pod = pods.get(`${namespace}/${name}`);
      if (pod === undefined) throw new Error(`no pod ${namespace}/${name}`);
      change(pod);
      write(pod);
      emit("MODIFIED", pod);
      return snapshot(pod);
    },
    remove(namespace, name) {
      const pod = pods.get(`${namespace}/${name}`);
      if (pod === undefined) throw new Error(`no pod ${namespace}/${name}`);
      pods.delete(`${namespace}/${name}`);
      emit("DELETED", pod);
      return snapshot(pod);
    },
    get: (namespace, name) => {
      const pod = pods.get(`${namespace}/${name}`);
      return pod === undefined ? undefined : snapshot(pod);
    },
    watch: (listener) => void listeners.push(listener),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}

function status(code: number, reason: string, message: string, name?: string): object {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(name === undefined ? {} : { details: { name, kind: "pods" } }), code };
}

/** RFC 7386 JSON merge patch. (A strategic merge patch of maps, as ours are, is the same.) */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const result = (typeof target === "object" && target !== null && !Array.isArray(target) ? target : {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** RFC 6902 JSON patch: add, remove, replace, test. */
function applyJsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw new Error("a JSON patch must be an array of operations");
  const document = structuredClone(target) as Record<string, unknown>;
  for (const operation of patch as Array<{ op: string; path: string; value?: unknown }>) {
    const keys = operation.path.split("/").slice(1).map((key) => key.replaceAll("~1", "/").replaceAll("~0", "~"));
    const last = keys.pop();
    if (last === undefined) throw new Error(`bad path ${operation.path}`);
    let parent: any = document;
    for (const key of keys) {
      parent = parent?.[key];
      if (parent === undefined) throw new Error(`path ${operation.path} does not exist`);
    }
    switch (operation.op) {
      case "add":
      case "replace":
        if (Array.isArray(parent) && operation.op === "add") parent.splice(last === "-" ? parent.length : Number(last), 0, operation.value);
        else parent[last] = operation.value;
        break;
      case "remove":
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else delete parent[last];
        break;
      case "test":
        if (JSON.stringify(parent[last]) !== JSON.stringify(operation.value)) throw new Error(`test failed at ${operation.path}`);
        break;
      default:
        throw new Error(`unsupported op ${operation.op}`);
    }
  }
  return document;
}

/** Label selectors: k=v, k==v, k!=v, k (exists), !k, joined by commas (AND). */
function selects(selector: string, labels: Record<string, string> = {}): boolean {
  return selector.split(",").every((term) => {
    const [, key, operator, value] = /^\s*(!?[^=!\s]+)\s*(==|=|!=)?\s*(.*?)\s*$/.exec(term) ?? [];
    if (key === undefined) return true;
    if (operator === undefined) return key.startsWith("!") ? !(key.slice(1) in labels) : key in labels;
    return operator === "!=" ? labels[key] !== value : labels[key] === value;
  });
}

/** A kubeconfig file pointing at a stand-in API server at `url` (with the token "fake-token"). */
export function writeKubeconfig(url: string): string {
  const kubeconfig = join(scratchDir("fake-kube-"), "config");
  writeFileSync(
    kubeconfig,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: fake",
      "  cluster:",
      `    server: ${url}`,
      "    insecure-skip-tls-verify: true", // the client refuses plain http:// without it
      "users:",
      "- name: fake",
      "  user:",
      "    token: fake-token",
      "contexts:",
      "- name: fake",
      "  context: {cluster: fake, user: fake}",
      "current-context: fake",
      "",
    ].join("\n"),
  );
  return kubeconfig;
}
