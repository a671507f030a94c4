// The function as a long-running service: listen, say HELLO to Optune, serve events, and on a
// signal stop accepting, finish what is in flight, say GOODBYE.
import type { AddressInfo } from "node:net";
import type { Config } from "../edges/config.js";
import { createFunction, goodbyeBudgetMs, type FunctionIo, type ServoFunction } from "./function.js";
import { describeKubeconfig, preloadKubernetes } from "../edges/kubernetes.js";
import { createOutcomeLog } from "./outcome-log.js";
import { afterFirstRequest, drain } from "../edges/http-edge.js";
import { createMetrics } from "../edges/metrics.js";
import { createHttpServer } from "./server.js";

/** How long after start the first sweep runs: the event that woke a cold start is answered first. */
export const START_SWEEP_DELAY_MS = 5000;

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
  /**
   * Stops accepting, lets the events in flight finish, sends GOODBYE: all within
   * SHUTDOWN_TIMEOUT; deliveries still in flight when the time is up end, and their events are
   * answered 503. Idempotent.
   */
  stop(reason: string): Promise<void>;
}

export async function startFunction(config: Config, io: FunctionIo): Promise<RunningFunction> {
  // Sweeps run where claims are kept in the pods (a sweep in memory mode would report everything again).
  const metrics = createMetrics({ server: "function", sweeps: config.dedupe === "annotation" || config.dryRun && config.kubeconfig !== undefined });
  const fn = createFunction(config, { metrics, ...io });
  const { log, deliver } = fn;
  const outcomes = createOutcomeLog(log, config.appIdSpec);
  // A retry later than the source's window is the sweep's, where there is one (claims in the pods);
  // without a sweep (memory mode) the source's retries are the only ones: always 503.
  const retryWindowSeconds = config.dedupe === "annotation" ? config.sourceRetryWindowMs / 1000 : Infinity;
  const server = createHttpServer({ handle: fn.handle, log, outcomes, metrics, retryWindowSeconds, ...(fn.authenticate === undefined ? {} : { authenticate: fn.authenticate }) });

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
    eventAuth: config.eventAudience === undefined ? "off (deletes are believed only for pods this function claimed)" : { audience: config.eventAudience, senders: config.eventSenders === undefined ? "any token for the audience (set OPTUNE_EVENT_SENDERS)" : [...config.eventSenders] },
    kubeconfig: describeKubeconfig(config.kubeconfig),
    instance: fn.instanceId,
  });
  if (config.dryRun) log.warn("dry run: OPTUNE_ACCOUNT and OPTUNE_URL are not set, so messages are printed to stdout, not sent");

  // HELLO, and loading the heavy modules (prom-client, the Kubernetes client for a kubeconfig), wait until the first
  // request is answered, or a second: a cold start answers the event that woke it first.
  let hello: Promise<void> = Promise.resolve();
  const warmUp = afterFirstRequest(server, () => {
    hello = deliver({ appId: GLOBAL_APP, body: helloMessage(config.account) }).then((result) => {
      if (!result.ok) log.error("HELLO not delivered", { error: result.error });
    });
    void metrics.load().catch((error: Error) => log.error("cannot load prom-client", { error: error.message }));
    if (config.kubeconfig !== undefined) void preloadKubernetes(config.kubeconfig).catch((error: Error) => log.error("cannot load the Kubernetes client", { error: error.message }));
  });

  // The ApiServerSource sends nothing for pods that finished (or were held) before it started, nor
  // while nobody listened: sweep soon after start, not only at the next ping (a ping then shares it).
  let startSweep: Promise<void> = Promise.resolve();
  const startSweepTimer =
    config.dedupe === "annotation" && config.kubeconfig !== undefined && io.sweepAtStart !== false
      ? setTimeout(() => {
          startSweep = fn.handle({ kind: "sweep" }).then((outcome) => outcomes.record(outcome, { type: "start sweep" }));
        }, START_SWEEP_DELAY_MS).unref()
      : undefined;

  let stopping: Promise<void> | undefined;
  const stop = (reason: string) =>
    (stopping ??= (async () => {
      log.info("stopping", { reason, withinMs: config.shutdownTimeoutMs });
      clearTimeout(startSweepTimer);
      warmUp(); // a HELLO before the GOODBYE, even for an instance stopped at once
      // Leave GOODBYE its budget, and half a second to write the answers of what had to be cut short.
      const finish = await drain(server, Promise.all([server.idle(), hello, startSweep]), server.idle, config.shutdownTimeoutMs - goodbyeBudgetMs(config) - 500, () => {
        log.warn("shutdown grace period over: ending the deliveries still in flight; their events are answered 503");
        fn.abortInFlight();
      });
      outcomes.close();
      const goodbye = await fn.deliverBriefly({ appId: GLOBAL_APP, body: goodbyeMessage(config.account, reason) });
      if (!goodbye.ok) log.error("GOODBYE not delivered", { error: goodbye.error });
      await finish();
      fn.close();
      log.info("stopped", { reason });
    })());

  return { ...fn, port, url: `http://127.0.0.1:${port}/`, stop };
}
