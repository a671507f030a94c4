// A function instance (the real HTTP server, in-process) wired to a local Optune receiver, and the
// two ways an event source POSTs a CloudEvent. Encoding uses the official SDK, independently of us.
import { CloudEvent as SdkEvent, HTTP } from "cloudevents";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../handler/edges/config.js";
import type { TokenReviewer } from "../../handler/edges/kubernetes.js";
import { startFunction, type RunningFunction } from "../../handler/measure/lifecycle.js";
import { startReceiver, type Receiver, type Responder } from "../../handler/demo/optune-stand-in.js";
import { scratchDir } from "./scratch.js";

export type Mode = "binary" | "structured";

export interface Stack {
  readonly fn: RunningFunction;
  readonly receiver: Receiver;
  /** {"url","message"} lines the function printed. */
  readonly stdout: string[];
  /** Log lines, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  /** Raw log text, to search for what must never be logged. */
  readonly logText: () => string;
  send(event: Record<string, unknown>, mode?: Mode): Promise<Response>;
  post(body: string | Buffer, headers: Record<string, string>, path?: string): Promise<Response>;
  /** Requests the receiver got, without the lifecycle messages for app _global_. */
  measurements(): Receiver["requests"];
  close(): Promise<void>;
}

export interface StackOptions {
  readonly respond?: Responder;
  /**
   * Event authentication (OPTUNE_EVENT_AUDIENCE) with a stand-in for the API server's TokenReview:
   * every event is sent with this token, which the reviewer is asked about.
   */
  readonly eventAuth?: { readonly token: string; readonly audience: string; readonly reviewer: TokenReviewer };
  /** Share one receiver between several function instances (closed by its owner). */
  readonly receiver?: Receiver;
  /** false: no sweep soon after start, only the pings' (a test that counts what a ping sweeps). */
  readonly sweepAtStart?: boolean;
}

/** `env` overrides the defaults; a variable set to undefined is left unset. */
export async function startStack(env: Record<string, string | undefined> = {}, options: StackOptions = {}): Promise<Stack> {
  const receiver = options.receiver ?? (await startReceiver(options.respond));
  const stdout: string[] = [];
  const rawLogs: string[] = [];
  // Memory dedupe unless a test asks for claims: a developer's ~/.kube/config must not be used.
  const auth = options.eventAuth;
  // Event authentication needs a Kubernetes configuration; its reviewer stands in for the API server, so the file is never read.
  const kube = auth === undefined ? {} : { OPTUNE_EVENT_AUDIENCE: auth.audience, KUBECONFIG: unusedKubeconfig() };
  const config = loadConfig({ PORT: "0", OPTUNE_URL: receiver.template, LOG_LEVEL: "debug", OPTUNE_DEDUPE: "memory", ...kube, ...env });
  const fn = await startFunction(config, { print: (line) => stdout.push(line), logLine: (line) => rawLogs.push(line), ...(auth === undefined ? {} : { reviewer: auth.reviewer }), ...(options.sweepAtStart === undefined ? {} : { sweepAtStart: options.sweepAtStart }) });
  const post = (body: string | Buffer, headers: Record<string, string>, path = "/") =>
    fetch(new URL(path, fn.url), { method: "POST", headers: auth === undefined ? headers : { authorization: `Bearer ${auth.token}`, ...headers }, body });
  return {
    fn,
    receiver,
    stdout,
    get logs() {
      return rawLogs.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    logText: () => rawLogs.join(""),
    post,
    send: (event, mode = "binary") => {
      const message = mode === "binary" ? HTTP.binary(new SdkEvent(event, false)) : { headers: { "content-type": "application/cloudevents+json" }, body: JSON.stringify(event) };
      return post(String(message.body ?? ""), message.headers as Record<string, string>);
    },
    measurements: () => receiver.requests.filter((request) => !request.path.split("/").includes("_global_")),
    async close() {
      await fn.stop("test over");
      if (options.receiver === undefined) await receiver.close();
    },
  };
}

let unused: string | undefined;
/** A kubeconfig file that exists, for configurations that need one, in one temp folder per test process. */
function unusedKubeconfig(): string {
  if (unused !== undefined) return unused;
  unused = join(scratchDir("servo-stack-"), "kubeconfig");
  writeFileSync(unused, "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n");
  return unused;
}

/** A reviewer that accepts exactly `token` for `audience`, as the API server would a valid one. */
export function acceptingReviewer(token: string, audience: string, asked: string[] = []): TokenReviewer {
  return {
    review: async (given, forAudience) => {
      asked.push(given);
      return given === token && forAudience === audience ? { authenticated: true, user: "system:serviceaccount:batch:oidc-apiserversource-job-pods", audiences: [audience] } : { authenticated: false, reason: "the token is not valid" };
    },
  };
}

/** A structured ApiServerSource event for a pod. */
export function podEvent(pod: unknown, action: "add" | "update" | "delete" = "update", id = `e-${Math.random()}`): Record<string, unknown> {
  const metadata = (pod as { metadata?: { name?: unknown; namespace?: unknown } }).metadata ?? {};
  const text = (value: unknown) => (typeof value === "string" ? value : "?");
  return {
    specversion: "1.0",
    id,
    source: "https://10.96.0.1:443",
    type: `dev.knative.apiserver.resource.${action}`,
    subject: `/apis/v1/namespaces/${text(metadata.namespace)}/pods/${text(metadata.name)}`,
    datacontenttype: "application/json",
    kind: "Pod",
    apiversion: "v1",
    name: text(metadata.name),
    namespace: text(metadata.namespace),
    data: pod,
  };
}
