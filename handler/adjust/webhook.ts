// `servo-k8s-multijob webhook`: the mutating admission webhook over HTTPS (the API server calls
// webhooks only over HTTPS). POST /mutate takes an AdmissionReview and answers one; the TLS pair
// is read again when cert-manager renews the mounted Secret, so new connections use the new pair.
import { readFileSync } from "node:fs";
import type http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { ConfigError, holdsPods, type Config } from "../edges/config.js";
import { afterFirstRequest, CONNECTION_LIMITS, createEdge, drain, guardConnections, nodeTimeouts, reply, SERVER_TIMEOUTS, type ConnectionLimits, type ServerTimeouts } from "../edges/http-edge.js";
import { createMetrics, metricsEndpoint } from "../edges/metrics.js";
import { createLogger, type Logger } from "../edges/log.js";
import { connectKubernetes, type PolicyReader } from "../edges/kubernetes.js";
import { connectOptune, redact } from "../edges/optune.js";
import { watchFiles } from "../edges/secret-files.js";
import { admissionResponse, decodeAdmissionReview, NotAdmissionReview } from "./admission.js";
import { createAdmissionLog } from "./admission-log.js";
import { createAdmitter } from "./admit.js";
import { startPolicyCache, type PolicyCache } from "./policy-cache.js";

export interface WebhookIo {
  /** Where {"url","message"} lines of a dry run go (stdout). */
  readonly print: (line: string) => void;
  readonly logLine?: (line: string) => void;
  /** How often the TLS files are checked for a new pair (default 10 s). */
  readonly tlsPollMs?: number;
  readonly timeouts?: ServerTimeouts;
  readonly connectionLimits?: ConnectionLimits;
  /** Reads the namespaces' LimitRanges and ResourceQuotas instead of the configured Kubernetes API. */
  readonly policies?: PolicyReader;
}

export interface RunningWebhook {
  readonly port: number;
  readonly url: string;
  readonly log: Logger;
  /** The body bytes reserved now against MAX_BODY_BYTES_IN_FLIGHT. */
  readonly bodyBytesInFlight: () => number;
  /** With a Kubernetes configuration: the watched namespaces' LimitRanges and ResourceQuotas as the webhook sees them. */
  readonly policies?: Pick<PolicyCache, "policies" | "synced">;
  /** Stops accepting, lets admissions in flight finish (each is bounded by OPTUNE_ADJUST_BUDGET). Idempotent. */
  stop(reason: string): Promise<void>;
}

export async function startWebhook(config: Config, io: WebhookIo): Promise<RunningWebhook> {
  const log = createLogger(config.logLevel, io.logLine);
  const { certFile, keyFile } = config.webhook;
  const pair = readPair(certFile, keyFile);
  const inFlight = new AbortController();
  const metrics = createMetrics({ server: "webhook" });
  const optune = connectOptune(config, { print: io.print, log, signal: inFlight.signal, metrics });
  // With a Kubernetes configuration (in a pod: its ServiceAccount), the namespaces' limits bound Optune's ranges.
  // Read from a watch per namespace (policy-cache.ts), LISTed per admission only until it is synced.
  const cache = io.policies !== undefined || config.kubeconfig === undefined ? undefined : startPolicyCache({ api: connectKubernetes(config.kubeconfig, { timeoutMs: Math.min(config.kubeApiTimeoutMs, config.adjustBudgetMs / 2), signal: inFlight.signal, metrics }), namespaces: config.namespaces, log });
  const kubernetes = io.policies ?? cache;
  const admit = createAdmitter({ criteria: config, ranges: config.ranges, budgetMs: config.adjustBudgetMs, deliver: optune.deliver, resourceMetrics: config.prometheus !== undefined, hold: holdsPods(config), ...(kubernetes === undefined ? {} : { policies: (namespace) => kubernetes.policies(namespace) }) });

  const admissions = createAdmissionLog(log, (text) => redact(text, config.authToken));
  let ready = true;
  const timeouts = io.timeouts ?? SERVER_TIMEOUTS;
  const edge = createEdge({
    log,
    bodyTimeoutMs: timeouts.bodyTimeout,
    ready: () => ready,
    path: "/mutate",
    hint: "POST AdmissionReviews to /mutate",
    get: { "/metrics": metricsEndpoint(metrics) },
    post: async (_request, response, body) => {
      const started = performance.now();
      let request;
      try {
        request = decodeAdmissionReview(JSON.parse(body.toString("utf8")));
      } catch (error) {
        if (!(error instanceof NotAdmissionReview || error instanceof SyntaxError)) throw error;
        log.warn("not an AdmissionReview", { error: error.message });
        return reply(response, 400, { error: `not an AdmissionReview: ${error.message}` });
      }
      const admission = await admit(request);
      metrics.admission(admission.result);
      admissions.record(admission, { uid: request.uid, elapsedMs: Math.round((performance.now() - started) * 100) / 100 });
      return reply(response, 200, admissionResponse(request.uid, { ...(admission.patch ? { patch: admission.patch } : {}), ...(admission.warning ? { warnings: [admission.warning] } : {}) }));
    },
  });
  let server: https.Server;
  const limits = io.connectionLimits ?? CONNECTION_LIMITS;
  try {
    server = https.createServer({ ...pair, ...nodeTimeouts(timeouts), handshakeTimeout: limits.handshakeMs }, edge.listener as http.RequestListener);
  } catch (error) {
    throw new ConfigError("WEBHOOK_TLS_CERT_FILE", `and WEBHOOK_TLS_KEY_FILE do not hold a usable certificate and key: ${(error as Error).message}`);
  }
  guardConnections(server, limits);

  // cert-manager renews the Secret in place; a half-written pair is refused and the last good one kept.
  const stopWatching = watchFiles(
    [certFile, keyFile],
    () => {
      try {
        server.setSecureContext(readPair(certFile, keyFile));
        log.info("TLS certificate read again", { certFile });
      } catch (error) {
        log.warn("cannot use the new TLS pair yet; keeping the previous one", { error: (error as Error).message });
      }
    },
    io.tlsPollMs,
  );

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.webhook.port, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  afterFirstRequest(server, () => void metrics.load().catch((error: Error) => log.error("cannot load prom-client", { error: error.message })));
  log.info("webhook listening", { port, dryRun: config.dryRun, namespaces: [...config.namespaces], appId: config.appIdSpec, budgetMs: config.adjustBudgetMs, certFile });

  let stopping: Promise<void> | undefined;
  const stop = (reason: string) =>
    (stopping ??= (async () => {
      log.info("stopping", { reason, withinMs: config.shutdownTimeoutMs, servingForMs: config.webhookShutdownDelayMs });
      // Not ready first, and still serving: the endpoint leaves the Service while the API server may
      // still send admissions here, which would otherwise be refused and their pods admitted untuned.
      ready = false;
      await new Promise((resolve) => setTimeout(resolve, config.webhookShutdownDelayMs));
      // Each admission still in flight when the time is up is answered "allowed, unchanged": a pod never waits on us.
      const finish = await drain(server, edge.idle(), edge.idle, config.shutdownTimeoutMs - config.webhookShutdownDelayMs - 500, () => inFlight.abort());
      await finish();
      stopWatching();
      cache?.stop();
      optune.close();
      admissions.close();
      log.info("stopped", { reason });
    })());

  return { port, url: `https://127.0.0.1:${port}/mutate`, log, bodyBytesInFlight: edge.bodyBytesInFlight, stop, ...(cache === undefined ? {} : { policies: cache }) };
}

function readPair(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const read = (variable: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError(variable, `names a file that cannot be read: ${(error as Error).message}`);
    }
  };
  return { cert: read("WEBHOOK_TLS_CERT_FILE", certFile), key: read("WEBHOOK_TLS_KEY_FILE", keyFile) };
}
