// The whole product on the real components, as an operator would run it: the control plane
// (control-plane.ts) with the real CRDs, everything `manifests` writes created with strict field
// validation, the webhook registered as generated (its service reference swapped for a loopback
// URL only), the function's replicas on the generated ServiceAccount's token, and Knative's real
// receive adapter per generated ApiServerSource, on the source's own ServiceAccount's token,
// sinking through a round-robin proxy into the replicas. Optune is the local stand-in.
import { writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { startWebhook, type RunningWebhook } from "../../handler/adjust/webhook.js";
import { loadConfig } from "../../handler/edges/config.js";
import { manifests, type ManifestOptions, type Release } from "../../handler/deploy/manifests.js";
import { startReceiver, type Receiver } from "../../handler/demo/optune-stand-in.js";
import { makeCertificate } from "../support/admission.js";
import { scratchDir } from "../support/scratch.js";
import { startStack, type Stack } from "../support/stack.js";
import { startAdapter, type ApiServerSource, type RunningAdapter } from "./adapter.js";
import { createAll, type Document, type RealApiServer } from "./apiserver.js";
import type { KubernetesRelease } from "./components.js";
import { startControlPlane, type ControlPlane } from "./control-plane.js";
import { applyCrds } from "./crds.js";
import { startRoundRobin, type RoundRobin } from "./round-robin.js";

export interface Tier {
  readonly plane: ControlPlane;
  readonly server: RealApiServer;
  readonly receiver: Receiver;
  readonly options: ManifestOptions & Release;
  readonly documents: readonly Document[];
  readonly functionKubeconfig: string;
  readonly functionEnv: Readonly<Record<string, string>>;
  /** The function's replicas (restartReplica replaces one). */
  readonly replicas: Stack[];
  readonly sink: RoundRobin;
  readonly adapters: RunningAdapter[];
  webhook?: RunningWebhook;
  readonly webhookCa: string;
  /** Stops replica `index` (as a crash would, the proxy then answers 502 for it) and starts a new one, with `env` added. */
  restartReplica(index: number, env?: Readonly<Record<string, string>>): Promise<void>;
  /** Stops every replica: the proxy answers 502 until startReplicas. */
  stopReplicas(): Promise<void>;
  startReplicas(): Promise<void>;
  /**
   * Starts the adapters of every generated ApiServerSource and waits until each delivers a
   * canary's event; `mode` overrides the generated mode (Reference: Knative's default).
   */
  startAdapters(mode?: "Resource" | "Reference"): Promise<void>;
  stopAdapters(): Promise<void>;
  /** The webhook's /metrics text. */
  webhookMetrics(): Promise<string>;
  stop(): Promise<void>;
}

export interface TierOptions {
  readonly release?: KubernetesRelease;
  readonly options: ManifestOptions & Release;
  readonly replicas?: number;
  /** Extra environment for the function's replicas. */
  readonly env?: Readonly<Record<string, string>>;
}

const FUNCTION_SA = "servo-k8s-multijob";
/** Resources for pods that are not the subject (a quota may demand them). */
export const SMALL = { limits: { cpu: "10m", memory: "16Mi" }, requests: { cpu: "10m", memory: "16Mi" } };
const WEBHOOK_SA = "servo-k8s-multijob-webhook";

export async function startTier(tierOptions: TierOptions): Promise<Tier> {
  const { options } = tierOptions;
  const plane = await startControlPlane({ ...(tierOptions.release === undefined ? {} : { release: tierOptions.release }) });
  const server = plane.server;
  const receiver = await startReceiver();
  const stops: Array<() => Promise<void>> = [() => receiver.close(), () => plane.stop()];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  };
  try {
    await applyCrds(server);
    for (const namespace of options.watch) await server.createNamespace(namespace);
    // ValidatingAdmissionPolicy is GA since 1.30: on the oldest release claimed, `--no-patch-policy`.
    const documents = manifests({ ...options, ...(tierOptions.release === "oldest" ? { patchPolicy: false } : {}) }).map((documented) => documented.manifest as unknown as Document);
    const refused = await createAll(server, documents);
    if (refused.length > 0) throw new Error(`the API server refused what manifests wrote:\n${refused.join("\n")}`);
    const functionKubeconfig = server.kubeconfig(await server.serviceAccountToken(options.namespace, FUNCTION_SA), "function");
    const functionEnv = { POD_NAMESPACES: options.watch.join(","), OPTUNE_ACCOUNT: "acme", KUBECONFIG: functionKubeconfig, OPTUNE_DEDUPE: "annotation", LOG_LEVEL: "warn", ...tierOptions.env };
    const replicas: Stack[] = [];
    stops.push(async () => {
      await Promise.all(replicas.map((replica) => replica.close()));
    });
    for (let index = 0; index < (tierOptions.replicas ?? 3); index++) replicas.push(await startStack(functionEnv, { receiver }));
    const sink = await startRoundRobin(replicas.map((replica) => replica.fn.url));
    stops.push(() => sink.close());
    const adapters: RunningAdapter[] = [];
    stops.push(async () => {
      await Promise.all(adapters.splice(0).map((adapter) => adapter.stop()));
    });

    let webhook: RunningWebhook | undefined;
    let webhookCa = "";
    if (options.webhook) {
      const dir = scratchDir("tier-webhook-");
      const pair = await makeCertificate("127.0.0.1");
      webhookCa = pair.cert;
      writeFileSync(join(dir, "tls.crt"), pair.cert);
      writeFileSync(join(dir, "tls.key"), pair.key);
      // As in its pod: the webhook's own ServiceAccount, with the Roles `manifests --webhook` writes,
      // and the function's configuration (claims in the pods: it holds job pods until reported).
      const token = await server.serviceAccountToken(options.namespace, WEBHOOK_SA);
      const config = loadConfig({ POD_NAMESPACES: options.watch.join(","), OPTUNE_ACCOUNT: "acme", OPTUNE_URL: receiver.template, KUBECONFIG: server.kubeconfig(token, "webhook"), WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"), WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key"), WEBHOOK_SHUTDOWN_DELAY: "0", LOG_LEVEL: process.env.DEBUG_WEBHOOK ? "debug" : "warn" });
      webhook = await startWebhook(config, { print: () => {}, logLine: (line) => process.env.DEBUG_WEBHOOK && process.stderr.write(line) });
      const running = webhook;
      stops.push(() => running.stop("test over"));
      await registerWebhook(server, documents, webhook.url, webhookCa);
    }

    const tier: Tier = {
      plane,
      server,
      receiver,
      options,
      documents,
      functionKubeconfig,
      functionEnv,
      replicas,
      sink,
      adapters,
      ...(webhook === undefined ? {} : { webhook }),
      webhookCa,
      async restartReplica(index, env = {}) {
        const urls: Array<string | undefined> = replicas.map((replica) => replica.fn.url);
        urls[index] = undefined;
        sink.setReplicas(urls);
        await replicas[index]!.close();
        replicas[index] = await startStack({ ...functionEnv, ...env }, { receiver });
        sink.setReplicas(replicas.map((replica) => replica.fn.url));
      },
      async stopReplicas() {
        sink.setReplicas(replicas.map(() => undefined));
        await Promise.all(replicas.map((replica) => replica.close()));
      },
      async startReplicas() {
        for (let index = 0; index < replicas.length; index++) replicas[index] = await startStack(functionEnv, { receiver });
        sink.setReplicas(replicas.map((replica) => replica.fn.url));
      },
      async startAdapters(mode) {
        const generated = documents.filter((document) => document.kind === "ApiServerSource") as unknown as ApiServerSource[];
        const sources = mode === undefined ? generated : generated.map((source) => ({ ...source, spec: { ...source.spec, mode } }));
        for (const source of sources) {
          const token = await server.serviceAccountToken(source.metadata.namespace!, source.spec.serviceAccountName ?? "default");
          adapters.push(await startAdapter(server, source, token, sink.url));
        }
        await Promise.all(sources.map((source) => waitForCanary(server, sink, source.metadata.namespace!)));
      },
      async stopAdapters() {
        await Promise.all(adapters.splice(0).map((adapter) => adapter.stop()));
      },
      webhookMetrics: () => getText(`${webhook!.url.replace(/\/[^/]*$/, "")}/metrics`, webhookCa),
      stop: stopAll,
    };
    return tier;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The generated MutatingWebhookConfiguration, with its service reference swapped for `url` and `ca`. */
export async function registerWebhook(server: RealApiServer, documents: readonly Document[], url: string, ca: string): Promise<void> {
  const configuration = documents.find((document) => document.kind === "MutatingWebhookConfiguration") as unknown as { metadata: { name: string }; webhooks: Array<Record<string, unknown>> };
  const hooks = configuration.webhooks.map((hook) => ({ ...hook, clientConfig: { url, caBundle: Buffer.from(ca).toString("base64") } }));
  await server.request("DELETE", `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${configuration.metadata.name}`);
  const answer = await server.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations?fieldValidation=Strict", { ...configuration, webhooks: hooks });
  if (answer.status !== 201) throw new Error(`MutatingWebhookConfiguration: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
  // The API server picks a new configuration up within about a second: wait until a probe pod shows it in force.
  await new Promise((resolve) => setTimeout(resolve, 2000));
}

/** Polls `probe` every half second until it gives a value; throws after `ms`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * Waits until the webhook's view of `namespace`'s LimitRanges and ResourceQuotas (a watch: a change
 * reaches it within moments, not at once) shows what the API server answered to a write (the
 * object's name and resourceVersion, or a later version: a controller may have written since), or
 * `gone` (its name) after a DELETE. Versions are compared as numbers, which etcd's are.
 */
export async function webhookSees(webhook: RunningWebhook | undefined, namespace: string, what: { readonly name: string; readonly resourceVersion: string } | { readonly gone: string }): Promise<void> {
  const view = webhook?.policies;
  if (view === undefined) return;
  await waitFor(`the webhook's view of ${namespace}`, async () => {
    if (!view.synced(namespace)) return undefined;
    const { limitRanges, quotas } = await view.policies(namespace);
    const found = [...limitRanges, ...quotas].map((item) => (item as { metadata: { name: string; resourceVersion: string } }).metadata).find((metadata) => metadata.name === ("gone" in what ? what.gone : what.name));
    return ("gone" in what ? found === undefined : found !== undefined && Number(found.resourceVersion) >= Number(what.resourceVersion)) || undefined;
  }, 30_000);
}

/**
 * The adapter sends nothing for pods that exist when its watch starts, and says nothing when it is
 * up: a canary pod (not a job: no app id) whose event reaches the sink proves it is watching.
 */
export async function waitForCanary(server: RealApiServer, sink: RoundRobin, namespace: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const name = `canary-${attempt}-${Math.random().toString(36).slice(2, 8)}`;
    const pod = { apiVersion: "v1", kind: "Pod", metadata: { name, labels: { "batch.kubernetes.io/job-name": "canary", "job-name": "canary" } }, spec: { nodeName: "no-such-node", containers: [{ name: "canary", image: "registry.example.com/canary:1", resources: SMALL }] } };
    const created = await server.request("POST", `/api/v1/namespaces/${namespace}/pods`, pod);
    if (created.status !== 201) throw new Error(`canary pod in ${namespace}: ${created.status} ${JSON.stringify(created.body).slice(0, 300)}`);
    try {
      await sink.waitFor((delivery) => String(delivery.headers["ce-subject"] ?? delivery.body).includes(`/pods/${name}`), 5000);
      await server.request("DELETE", `/api/v1/namespaces/${namespace}/pods/${name}?gracePeriodSeconds=0`);
      return;
    } catch (error) {
      await server.request("DELETE", `/api/v1/namespaces/${namespace}/pods/${name}?gracePeriodSeconds=0`);
      if (attempt >= 11) throw new Error(`the adapter for ${namespace} delivered no event within a minute: ${(error as Error).message}`);
    }
  }
}

function getText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
        response.on("end", () => resolve(text));
      })
      .on("error", reject);
  });
}
