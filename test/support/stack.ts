// A function instance (the real HTTP server, in-process) wired to a local Optune receiver, and the
// two ways an event source POSTs a CloudEvent. Encoding uses the official SDK, independently of us.
import { CloudEvent as SdkEvent, HTTP } from "cloudevents";
import { loadConfig } from "../../handler/config.js";
import { startFunction, type RunningFunction } from "../../handler/measure/lifecycle.js";
import { startReceiver, type Receiver, type Responder } from "../../handler/optune-receiver.js";

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
  /** Share one receiver between several function instances (closed by its owner). */
  readonly receiver?: Receiver;
}

/** `env` overrides the defaults; a variable set to undefined is left unset. */
export async function startStack(env: Record<string, string | undefined> = {}, options: StackOptions = {}): Promise<Stack> {
  const receiver = options.receiver ?? (await startReceiver(options.respond));
  const stdout: string[] = [];
  const rawLogs: string[] = [];
  // Memory dedupe unless a test asks for claims: a developer's ~/.kube/config must not be used.
  const config = loadConfig({ PORT: "0", OPTUNE_URL: receiver.template, LOG_LEVEL: "debug", OPTUNE_DEDUPE: "memory", ...env });
  const fn = await startFunction(config, { print: (line) => stdout.push(line), logLine: (line) => rawLogs.push(line) });
  const post = (body: string | Buffer, headers: Record<string, string>, path = "/") =>
    fetch(new URL(path, fn.url), { method: "POST", headers, body });
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
