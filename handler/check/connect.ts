// `check`, the wire to the API server: the user's kubeconfig (the client's own authentication:
// tokens, certificates, exec plugins) applied to plain HTTP(S) calls, each bounded in size and by a
// total deadline (an answer that drips is cut off like one that never comes), all of them together
// by the check's deadline; an answer cut off mid-body is an error, never an empty success. The
// server URL's path is kept, so path-based proxies (Rancher's /k8s/clusters/<id>) work.
import http from "node:http";
import https from "node:https";
import type { KubeconfigSource } from "../edges/kubernetes.js";
import { loadKubernetesClient } from "../edges/kubernetes.js";

/** One call's whole answer must arrive within this. */
export const CALL_TIMEOUT_MS = 5000;
/** Every call of one check must be over within this. */
export const CHECK_DEADLINE_MS = 30_000;
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

export interface Answer {
  readonly status: number;
  /** The parsed JSON, or undefined when the body was not JSON. */
  readonly body: unknown;
}

/** What `check` asks of the API server. */
export interface Api {
  get(path: string): Promise<Answer>;
  post(path: string, body: unknown): Promise<Answer>;
}

export interface Limits {
  readonly callTimeoutMs: number;
  /** When every call must be over, in ms since the epoch. */
  readonly deadline: number;
}

/** The limits of one check started now. */
export function checkLimits(now = Date.now()): Limits {
  return { callTimeoutMs: CALL_TIMEOUT_MS, deadline: now + CHECK_DEADLINE_MS };
}

/** The API server's URL joined with an API path, keeping the server URL's own path as a prefix. */
export function apiUrl(server: string, path: string): URL {
  const base = new URL(server);
  const prefix = base.pathname.replace(/\/+$/, "");
  return new URL(`${base.origin}${prefix}${path}`);
}

/** The API of the kubeconfig's current cluster. Throws (with a message meant for the user) when the kubeconfig cannot be used. */
export async function connectApi(source: KubeconfigSource, limits: Limits): Promise<Api> {
  const client = await loadKubernetesClient();
  const config = new client.KubeConfig();
  if (source.kind === "in-cluster") config.loadFromCluster();
  else if (source.paths.length === 1) config.loadFromFile(source.paths[0]!);
  else config.loadFromDefault();
  const server = config.getCurrentCluster()?.server;
  if (server === undefined) throw new Error("the kubeconfig has no current cluster");
  try {
    apiUrl(server, "/");
  } catch {
    throw new Error("the kubeconfig's server is not a URL");
  }
  return httpApi(server, limits, async (options) => {
    await config.applyToHTTPSOptions(options);
  });
}

/** Calls to `server`, with `authenticate` adding the kubeconfig's credentials to each. */
export function httpApi(server: string, limits: Limits, authenticate: (options: https.RequestOptions) => Promise<void> = async () => {}): Api {
  const request = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const left = Math.min(limits.callTimeoutMs, limits.deadline - Date.now());
    if (left <= 0) throw new Error(`not asked: the check's ${CHECK_DEADLINE_MS / 1000} s were over`);
    const options: https.RequestOptions = { method, headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }) } };
    await authenticate(options);
    const url = apiUrl(server, path);
    return new Promise<Answer>((resolve, reject) => {
      let failure: Error | undefined;
      const stop = (error: Error) => {
        failure = error;
        call.destroy(error);
      };
      const call = (url.protocol === "http:" ? http : https).request(url, options, (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) stop(new Error(`the answer to ${method} ${path} is larger than ${MAX_ANSWER_BYTES} bytes`));
          else chunks.push(chunk);
        });
        response.on("error", () => {}); // settled by "close" below
        response.on("close", () => {
          if (!response.complete) return reject(failure ?? new Error(`the answer to ${method} ${path} was cut off mid-body`));
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            parsed = undefined;
          }
          resolve({ status: response.statusCode ?? 0, body: parsed });
        });
      });
      const timer = setTimeout(() => stop(new Error(`no whole answer to ${method} ${path} within ${left} ms`)), left);
      call.on("close", () => clearTimeout(timer));
      call.on("error", (error) => reject(failure ?? error));
      call.end(body === undefined ? undefined : JSON.stringify(body));
    });
  };
  return { get: (path) => request("GET", path), post: (path, body) => request("POST", path, body) };
}
