// The function as a long-running service: listen, say HELLO to Optune, serve events, and on a
// signal stop accepting, finish what is in flight, say GOODBYE.
import type { AddressInfo } from "node:net";
import type { Config } from "./config.js";
import { createFunction, type FunctionIo, type ServoFunction } from "./function.js";
import { describeKubeconfig, loadKubernetesClient } from "./kubernetes.js";
import { createHttpServer } from "./server.js";

/** Lifecycle messages go to this app id. */
export const GLOBAL_APP = "_global_";

export function helloMessage(account: string | undefined): object {
  return { event: "HELLO", param: { account: account ?? null } };
}

export function goodbyeMessage(account: string | undefined, reason: string): object {
  return { event: "GOODBYE", param: { account: account ?? null, reason } };
}

export interface RunningFunction extends ServoFunction {
  readonly port: number;
  readonly url: string;
  /** Stops accepting, waits for in-flight events (bounded), sends GOODBYE. Idempotent. */
  stop(reason: string): Promise<void>;
}

export async function startFunction(config: Config, io: FunctionIo): Promise<RunningFunction> {
  const fn = createFunction(config, io);
  const { log, deliver } = fn;
  const server = createHttpServer({ handle: fn.handle, log });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  log.info("listening", {
    port,
    dryRun: config.dryRun,
    namespaces: [...config.namespaces],
    appId: config.appIdSpec,
    token: config.authToken === undefined ? "none" : "set",
    dedupe: config.dedupe,
    kubeconfig: describeKubeconfig(config.kubeconfig),
    instance: fn.instanceId,
  });
  // Load the Kubernetes client now, off the request path, so the first event that needs it waits less.
  if (config.kubeconfig !== undefined) void loadKubernetesClient().catch((error: Error) => log.error("cannot load the Kubernetes client", { error: error.message }));
  if (config.dryRun) log.warn("dry run: OPTUNE_ACCOUNT and OPTUNE_URL are not set, so messages are printed to stdout, not sent");

  const hello = deliver({ appId: GLOBAL_APP, body: helloMessage(config.account) }).then((result) => {
    if (!result.ok) log.error("HELLO not delivered", { error: result.error });
  });

  let stopping: Promise<void> | undefined;
  const stop = (reason: string) =>
    (stopping ??= (async () => {
      log.info("stopping", { reason });
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // In-flight deliveries are bounded by the send deadline; give them that long, and a second.
      const drained = await Promise.race([
        Promise.all([server.idle(), hello]).then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), config.sendDeadlineMs + 1000).unref()),
      ]);
      if (!drained) log.warn("stopping with events still in flight");
      const goodbye = await fn.deliverBriefly({ appId: GLOBAL_APP, body: goodbyeMessage(config.account, reason) });
      if (!goodbye.ok) log.error("GOODBYE not delivered", { error: goodbye.error });
      server.closeAllConnections();
      await closed;
      log.info("stopped", { reason });
    })());

  return { ...fn, port, url: `http://127.0.0.1:${port}/`, stop };
}
