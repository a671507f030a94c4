// Composition: from a Config to a ready-to-call handler, with its delivery and dedupe.
// The server, the CLI's invoke and sweep, and the demo all build the function here, so they behave alike.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { holdsPods, type Config } from "../edges/config.js";
import { createHandler, type Handler, type SweepSettings } from "./handle.js";
import { connectKubernetes, refusalReporter, type PodApi, type TokenReviewer } from "../edges/kubernetes.js";
import { createEventAuthenticator, type EventAuthenticator } from "./event-auth.js";
import { connectPrometheus } from "../edges/prometheus.js";
import { resourceReader } from "./resources.js";
import { annotationLedger, memoryLedger, type ReportLedger } from "./ledger.js";
import { createLogger, type Logger } from "../edges/log.js";
import { noMetrics, type Metrics } from "../edges/metrics.js";
import { connectOptune, type Deliver } from "../edges/optune.js";

export interface FunctionIo {
  /** Where {"url","message"} lines go (stdout). */
  readonly print: (line: string) => void;
  /** Where log lines go (stderr). */
  readonly logLine?: (line: string) => void;
  /** Also print the lines of messages that were sent (the CLI's invoke does). */
  readonly echo?: boolean;
  /** Names this process in the claims it writes; default: host name and a random suffix. */
  readonly instanceId?: string;
  /** The Kubernetes API to use instead of connecting with the configuration's kubeconfig. */
  readonly pods?: PodApi;
  /** The events come from the operator (invoke's files), not from the network: deletes are believed. */
  readonly trustedInput?: boolean;
  /** Checks event tokens instead of the API server's TokenReview (OPTUNE_EVENT_AUDIENCE). */
  readonly reviewer?: TokenReviewer;
  /** Where the server counts what happens (the CLI's in-process commands count nothing). */
  readonly metrics?: Metrics;
  /** The server sweeps soon after it starts (default); a test that counts what only its pings sweep turns it off. */
  readonly sweepAtStart?: boolean;
}

export interface ServoFunction {
  readonly config: Config;
  readonly log: Logger;
  readonly handle: Handler;
  readonly deliver: Deliver;
  /** The same delivery with a short deadline, for GOODBYE while the platform waits to kill us. */
  readonly deliverBriefly: Deliver;
  readonly instanceId: string;
  /** With OPTUNE_EVENT_AUDIENCE: who sent an event (the HTTP edge asks before anything else). */
  readonly authenticate?: EventAuthenticator;
  /** How many Kubernetes calls were refused (403) so far. */
  readonly refusals: () => number;
  /** Ends every delivery and Kubernetes call in flight at once (the shutdown grace period is over). */
  readonly abortInFlight: () => void;
  /** Stops watching the token file. */
  readonly close: () => void;
}

/** How long GOODBYE may take: it must fit in the shutdown grace period after draining. */
export function goodbyeBudgetMs(config: Config): number {
  return Math.min(config.sendDeadlineMs, 5000, config.shutdownTimeoutMs / 5);
}

export function createFunction(config: Config, io: FunctionIo): ServoFunction {
  const log = createLogger(config.logLevel, io.logLine);
  const inFlight = new AbortController();
  const metrics = io.metrics ?? noMetrics;
  const optune = connectOptune(config, { print: io.print, log, signal: inFlight.signal, metrics, ...(io.echo === undefined ? {} : { echo: io.echo }) });
  const { deliver } = optune;

  const instanceId = io.instanceId ?? `${hostname()}-${randomBytes(3).toString("hex")}`;
  const api = config.kubeconfig === undefined || (io.pods !== undefined && io.reviewer !== undefined) ? undefined : connectKubernetes(config.kubeconfig, { timeoutMs: config.kubeApiTimeoutMs, signal: inFlight.signal, metrics });
  const pods = io.pods ?? api;
  const reviewer = io.reviewer ?? api;
  const authenticate = config.eventAudience === undefined || reviewer === undefined ? undefined : createEventAuthenticator({ audience: config.eventAudience, reviewer, ...(config.eventSenders === undefined ? {} : { senders: config.eventSenders }) });
  const refusals = refusalReporter(log);
  const memory = memoryLedger();
  const ledger: ReportLedger =
    config.dedupe === "annotation" && pods !== undefined
      ? annotationLedger({
          api: pods,
          memory,
          instance: instanceId,
          ttlMs: config.claimTtlMs,
          now: Date.now,
          onRefused: (error) => {
            metrics.claim("refused");
            refusals.report(error);
          },
          onLost: () => metrics.claim("lost"),
          // Every replica holds the same token; with none, the account names the deployment.
          proofKey: config.authToken ?? config.account ?? "servo-k8s-multijob",
          hold: holdsPods(config),
        })
      : memory;

  const handle = createHandler({
    criteria: config,
    ledger,
    deliver,
    log,
    ...(pods === undefined ? {} : { pods }),
    sweep: sweepSettings(config, pods),
    onRefused: refusals.report,
    maxInFlight: config.maxInFlight,
    metrics,
    trustDeletes: authenticate !== undefined || io.trustedInput === true,
    // Held pods are let go by the writer of the claims; a dry run writes nothing.
    ...(ledger !== memory && pods !== undefined && !config.dryRun ? { hold: { api: pods, limitMs: config.holdMs } } : {}),
    ...(config.prometheus === undefined
      ? {}
      : {
          resourceUsage: resourceReader({
            query: connectPrometheus(config.prometheus),
            timeoutMs: config.prometheus.timeoutMs,
            scrapeIntervalMs: config.prometheus.scrapeIntervalMs,
            warn: (message, fields) => log.warn(message, fields),
            count: (result) => metrics.resources(result),
            signal: inFlight.signal,
          }),
        }),
  });
  return {
    config,
    log,
    handle,
    deliver,
    // GOODBYE is sent after the deliveries in flight were aborted, so it does not listen to that signal.
    deliverBriefly: optune.deliverWithin(goodbyeBudgetMs(config)),
    instanceId,
    ...(authenticate === undefined ? {} : { authenticate }),
    refusals: refusals.count,
    abortInFlight: () => inFlight.abort(),
    close: optune.close,
  };
}

/** A sweep must not resend what it cannot see was sent: it needs claims, or a dry run that sends nothing. */
function sweepSettings(config: Config, pods: PodApi | undefined): SweepSettings {
  if (pods === undefined) return { unavailable: "a sweep needs the Kubernetes API, and no Kubernetes configuration was found" };
  if (config.dedupe !== "annotation" && !config.dryRun) {
    return { unavailable: "a sweep needs OPTUNE_DEDUPE=annotation: with only this process's memory it would report every finished job again" };
  }
  return { pods, maxAgeMs: config.sweepMaxAgeMs };
}
