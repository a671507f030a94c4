// Configuration from the environment (SPEC.md section 5), read and validated once at start into a
// frozen object. An invalid value is a ConfigError naming the variable; the CLI prints it and exits.
import { readFileSync, statSync } from "node:fs";
import { parseAppIdPath, type AppIdPath } from "../jobs/app-id.js";
import { ENV_SCHEMA } from "./config-schema.js";
// Generated from ENV_SCHEMA by ajv at build time (compile-config-schema.ts): compiling at start
// would cost ~95 ms of every cold start (ajv import + compile), half of the function's start time.
import validateEnv from "./config-validate.js";
import type { JobCriteria } from "../jobs/job.js";
import { findKubeconfig, type KubeconfigSource } from "./kubernetes.js";
import type { LogLevel } from "./log.js";
import { invisible, unprintable } from "./printable.js";

export const DEFAULT_OPTUNE_URL = "https://us-central1-optune-saas-collect.cloudfunctions.net/metrics/{acct}/{app_id}/servo";
export const DEFAULT_APP_ID = "spec/containers/0/env/[JOBID]";

export interface Config extends JobCriteria {
  /** The target URL template, with {acct} and {app_id}. */
  readonly optuneUrl: string;
  readonly account: string | undefined;
  readonly authToken: string | undefined;
  /** Print the messages instead of sending them (no account and no custom URL, or --dry-run). */
  readonly dryRun: boolean;
  readonly namespaces: ReadonlySet<string>;
  readonly appIdPath: AppIdPath;
  readonly appIdSpec: string;
  readonly port: number;
  readonly logLevel: LogLevel;
  /** Per-attempt timeout of a POST to Optune. */
  readonly sendTimeoutMs: number;
  /** Bound on all attempts of one delivery, backoff included: how long an event's answer may wait for Optune. */
  readonly sendDeadlineMs: number;
  /**
   * How long the event source keeps retrying an event answered 503 (OPTUNE_SOURCE_RETRY_WINDOW):
   * ~3 s for Knative's ApiServerSource (5 retries from 50 ms, Retry-After ignored), ~17 min behind
   * the Broker that `manifests --broker` writes. A 503 is answered only when the event may be
   * retried within it; a later retry is left to the sweep (202).
   */
  readonly sourceRetryWindowMs: number;
  /** Where the Kubernetes API is, if anywhere (Reference mode, claims and the sweep need it). */
  readonly kubeconfig: KubeconfigSource | undefined;
  /** How one report per job is kept: claims in the pod's annotations, or this process's memory. */
  readonly dedupe: "annotation" | "memory";
  /** A `sending` claim older than this was left by an instance that died: it may be taken over. */
  readonly claimTtlMs: number;
  /** The sweep reports only jobs that finished this recently (held pods whatever their age). */
  readonly sweepMaxAgeMs: number;
  /**
   * OPTUNE_HOLD: how long a deleted job pod may be held (our finalizer) until Optune has its
   * MEASUREMENT; 0: pods are not held, and the sweep lets go of those that are.
   */
  readonly holdMs: number;
  /** OPTUNE_AUTH_TOKEN_FILE: read again when it changes (mounted secrets are rotated in place). */
  readonly authTokenFile: string | undefined;
  /** Bound on deliveries to Optune in flight; beyond it events are answered 503 at once. */
  readonly maxInFlight: number;
  /** Time limit of one Kubernetes API call. */
  readonly kubeApiTimeoutMs: number;
  /** After SIGTERM everything ends within this: deliveries still in flight end as 503. */
  readonly shutdownTimeoutMs: number;
  /** The admission webhook's HTTPS port and TLS pair (read again when the files change). */
  readonly webhook: { readonly port: number; readonly certFile: string; readonly keyFile: string };
  /** The whole exchange with Optune for one admitted pod ends within this. */
  readonly adjustBudgetMs: number;
  /** What Optune may set, per setting: cpu in cores, mem in bytes. */
  readonly ranges: { readonly cpu: SettingRange; readonly mem: SettingRange };
  /**
   * OPTUNE_EVENT_AUDIENCE: every event must carry a Knative OIDC token for this audience, checked
   * with the API server (TokenReview); undefined: events are not authenticated.
   */
  readonly eventAudience: string | undefined;
  /**
   * OPTUNE_EVENT_SENDERS: with event authentication, the only identities whose tokens are accepted
   * (Knative's sources' OIDC service accounts, which `manifests --event-auth` lists); undefined:
   * any token for the audience.
   */
  readonly eventSenders: ReadonlySet<string> | undefined;
  /** After SIGTERM the webhook fails /readyz and keeps serving this long before it drains. */
  readonly webhookShutdownDelayMs: number;
  /** Where each run's CPU seconds and peak memory are read (cAdvisor series); undefined: not read. */
  readonly prometheus: PrometheusConfig | undefined;
}

export interface PrometheusConfig {
  readonly url: string;
  /** A bearer token for a querier behind auth (Thanos, OpenShift), read once at start. */
  readonly bearerToken?: string;
  /** The CA (PEM) that signed its certificate. */
  readonly ca?: string;
  /** A MEASUREMENT waits at most this long for Prometheus, then goes without the resource metrics. */
  readonly timeoutMs: number;
  /** How often the kubelet's cAdvisor series are scraped: the query window is widened by two of these. */
  readonly scrapeIntervalMs: number;
}

/** A tunable setting's range, as DESCRIPTION announces it and ADJUST must keep to. */
export interface SettingRange {
  readonly min: number;
  readonly max: number;
  readonly step: number;
}

export const DEFAULT_CPU_RANGE = "0.1,3.5,0.001";
export const DEFAULT_MEM_RANGE = "67108864,1073741824,4096";

/** Upper bounds of the duration settings, in seconds: a typo must not make the function wait for days. */
export const MAX_SECONDS = {
  OPTUNE_SEND_TIMEOUT: 120,
  OPTUNE_SEND_DEADLINE: 3600,
  OPTUNE_SOURCE_RETRY_WINDOW: 86_400,
  OPTUNE_CLAIM_TTL: 86_400,
  OPTUNE_SWEEP_MAX_AGE: 30 * 86_400,
  OPTUNE_HOLD: 30 * 86_400,
  KUBE_API_TIMEOUT: 120,
  SHUTDOWN_TIMEOUT: 3600,
  // Below the webhook's timeoutSeconds (10 in our manifests): past it the API server gives up on us.
  OPTUNE_ADJUST_BUDGET: 9,
  WEBHOOK_SHUTDOWN_DELAY: 60,
  PROMETHEUS_TIMEOUT: 10,
  PROMETHEUS_SCRAPE_INTERVAL: 300,
} as const;

/**
 * Whether job pods are held until reported: OPTUNE_HOLD above 0, claims kept in the pods
 * (OPTUNE_DEDUPE=annotation), and not a dry run: only a function that writes claims lets them go.
 */
export function holdsPods(config: Pick<Config, "holdMs" | "dryRun" | "dedupe">): boolean {
  return config.holdMs > 0 && !config.dryRun && config.dedupe === "annotation";
}

/** OPTUNE_HOLD's default: a day, long enough for an Optune outage over a night, short enough for a namespace deletion. */
export const DEFAULT_HOLD_SECONDS = 86_400;

/** A token file is a few dozen bytes; a bigger file is the wrong file. */
export const MAX_TOKEN_FILE_BYTES = 4096;
/** Variables whose values are never shown, not even in an error. */
const SECRET = new Set(["OPTUNE_AUTH_TOKEN"]);

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
  }
}

/** Every variable the function reads, for tests of deployment files. */
export const KNOWN_VARIABLES: readonly string[] = Object.keys(ENV_SCHEMA.properties);

type Env = Readonly<Record<string, string | undefined>>;

export interface LoadOptions {
  /** The CLI's --dry-run. */
  readonly dryRun?: boolean;
  /** Reads OPTUNE_AUTH_TOKEN_FILE. */
  readonly readFile?: (path: string) => string;
  /** Whether a file exists (to find a kubeconfig). */
  readonly exists?: (path: string) => boolean;
  /** Look for a Kubernetes configuration (in-cluster, KUBECONFIG, ~/.kube/config); `invoke` does only with --cluster. */
  readonly kubernetes?: boolean;
}

/** Reads the configuration from `env`; throws ConfigError. */
export function loadConfig(env: Env, options: LoadOptions = {}): Config {
  const relevant = pickDefined(env);
  if (!validateEnv(relevant)) {
    const variable = validateEnv.errors?.[0]?.instancePath.slice(1) ?? "configuration";
    const property = ENV_SCHEMA.properties[variable as keyof typeof ENV_SCHEMA.properties];
    throw new ConfigError(variable, `${property?.description ?? "is invalid"}, got ${shown(variable, relevant[variable])}`);
  }
  for (const [variable, value] of Object.entries(relevant)) {
    const found = unprintable(value);
    if (found !== undefined) throw new ConfigError(variable, `must be one line of printable characters (no control characters or line breaks), found ${found}`);
  }
  // Names that become part of a URL or a pod path: an invisible character would change them unseen.
  for (const variable of ["OPTUNE_ACCOUNT", "OPTUNE_APP_ID"] as const) {
    const found = relevant[variable] === undefined ? undefined : invisible(relevant[variable]);
    if (found !== undefined) throw new ConfigError(variable, `must not hold invisible characters (zero-width, soft hyphen, direction marks), found ${found}`);
  }

  const optuneUrl = relevant.OPTUNE_URL ?? DEFAULT_OPTUNE_URL;
  const account = relevant.OPTUNE_ACCOUNT;
  const dryRun = options.dryRun === true || (account === undefined && relevant.OPTUNE_URL === undefined);
  checkUrlTemplate(optuneUrl, account, dryRun);

  const appIdSpec = relevant.OPTUNE_APP_ID ?? DEFAULT_APP_ID;
  const port = portNumber(relevant, "PORT", "8080");
  // Knative's adapter sends one event at a time per watch and never times out: an answer held
  // holds every event behind it, so a delivery gets a few seconds, not minutes (the sweep retries).
  const sendDeadlineMs = seconds(relevant, "OPTUNE_SEND_DEADLINE", "5");
  const claimTtlMs = seconds(relevant, "OPTUNE_CLAIM_TTL", "120");
  const maxInFlight = Number(relevant.OPTUNE_MAX_INFLIGHT ?? "64");
  if (maxInFlight < 1 || maxInFlight > 10_000) throw new ConfigError("OPTUNE_MAX_INFLIGHT", `must be between 1 and 10000, got ${JSON.stringify(relevant.OPTUNE_MAX_INFLIGHT)}`);
  const kubeconfig = options.kubernetes === false ? undefined : findKubeconfig(env, options.exists);
  const dedupe = dedupeMode(relevant.OPTUNE_DEDUPE, kubeconfig, dryRun);
  const eventAudience = relevant.OPTUNE_EVENT_AUDIENCE;
  if (relevant.OPTUNE_EVENT_SENDERS !== undefined && eventAudience === undefined) {
    throw new ConfigError("OPTUNE_EVENT_SENDERS", "is set, but OPTUNE_EVENT_AUDIENCE is not: senders are told apart by their event tokens");
  }
  if (eventAudience !== undefined && kubeconfig === undefined) {
    throw new ConfigError("OPTUNE_EVENT_AUDIENCE", "is set, but no Kubernetes configuration was found: event tokens are checked with the API server (TokenReview)");
  }
  const shutdownTimeoutMs = seconds(relevant, "SHUTDOWN_TIMEOUT", "25");
  // 0 is allowed here: no delay (a test, or a platform that removes endpoints before SIGTERM).
  // Unset: 5 s, or a fifth of a shorter SHUTDOWN_TIMEOUT.
  const webhookShutdownDelayMs =
    relevant.WEBHOOK_SHUTDOWN_DELAY === undefined ? Math.min(5000, shutdownTimeoutMs / 5)
    : Number(relevant.WEBHOOK_SHUTDOWN_DELAY) === 0 ? 0
    : seconds(relevant, "WEBHOOK_SHUTDOWN_DELAY", "5");
  if (webhookShutdownDelayMs >= shutdownTimeoutMs) {
    throw new ConfigError("WEBHOOK_SHUTDOWN_DELAY", `must be shorter than SHUTDOWN_TIMEOUT (${shutdownTimeoutMs / 1000} s): the webhook still has to drain after it`);
  }
  if (dedupe === "annotation" && claimTtlMs <= sendDeadlineMs) {
    throw new ConfigError("OPTUNE_CLAIM_TTL", `must be longer than OPTUNE_SEND_DEADLINE (${sendDeadlineMs / 1000} s): a claim must outlive the delivery it guards`);
  }

  return Object.freeze({
    optuneUrl,
    account,
    authToken: authToken(relevant, options.readFile ?? readTokenFile),
    authTokenFile: relevant.OPTUNE_AUTH_TOKEN_FILE,
    dryRun,
    namespaces: new Set(
      (relevant.POD_NAMESPACES ?? "default")
        .split(",")
        .map((namespace) => namespace.trim()),
    ),
    appIdPath: appIdPath(appIdSpec),
    appIdSpec,
    port,
    logLevel: (relevant.LOG_LEVEL ?? "info") as LogLevel,
    sendTimeoutMs: seconds(relevant, "OPTUNE_SEND_TIMEOUT", "10"),
    sendDeadlineMs,
    sourceRetryWindowMs: seconds(relevant, "OPTUNE_SOURCE_RETRY_WINDOW", "3"),
    kubeconfig,
    dedupe,
    claimTtlMs,
    sweepMaxAgeMs: seconds(relevant, "OPTUNE_SWEEP_MAX_AGE", "3600"),
    holdMs: Number(relevant.OPTUNE_HOLD) === 0 && relevant.OPTUNE_HOLD !== undefined ? 0 : seconds(relevant, "OPTUNE_HOLD", String(DEFAULT_HOLD_SECONDS)),
    maxInFlight,
    kubeApiTimeoutMs: seconds(relevant, "KUBE_API_TIMEOUT", "10"),
    shutdownTimeoutMs,
    webhook: Object.freeze({
      port: portNumber(relevant, "WEBHOOK_PORT", "8443"),
      certFile: relevant.WEBHOOK_TLS_CERT_FILE ?? "/etc/webhook/tls/tls.crt",
      keyFile: relevant.WEBHOOK_TLS_KEY_FILE ?? "/etc/webhook/tls/tls.key",
    }),
    adjustBudgetMs: seconds(relevant, "OPTUNE_ADJUST_BUDGET", "5"),
    ranges: Object.freeze({
      cpu: settingRange(relevant, "OPTUNE_CPU_RANGE", DEFAULT_CPU_RANGE, "cores"),
      mem: settingRange(relevant, "OPTUNE_MEM_RANGE", DEFAULT_MEM_RANGE, "bytes"),
    }),
    eventAudience,
    eventSenders: relevant.OPTUNE_EVENT_SENDERS === undefined ? undefined : Object.freeze(new Set(relevant.OPTUNE_EVENT_SENDERS.split(","))),
    webhookShutdownDelayMs,
    prometheus: prometheusConfig(relevant, options.readFile ?? readTokenFile),
  });
}

function prometheusConfig(env: Record<string, string>, readFile: (path: string) => string): PrometheusConfig | undefined {
  const url = env.PROMETHEUS_URL;
  for (const variable of ["PROMETHEUS_BEARER_TOKEN_FILE", "PROMETHEUS_CA_FILE", "PROMETHEUS_TIMEOUT", "PROMETHEUS_SCRAPE_INTERVAL"]) {
    if (url === undefined && env[variable] !== undefined) throw new ConfigError(variable, "is set, but PROMETHEUS_URL is not");
  }
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError("PROMETHEUS_URL", `is not a URL, got ${JSON.stringify(url)}`);
  }
  if (parsed.username !== "" || parsed.password !== "") throw new ConfigError("PROMETHEUS_URL", "must not hold a user:password@ part (not shown): use PROMETHEUS_BEARER_TOKEN_FILE");
  if (parsed.search !== "" || parsed.hash !== "") throw new ConfigError("PROMETHEUS_URL", `must be the API's base URL, without a query or fragment, got ${JSON.stringify(url)}`);
  const file = (variable: "PROMETHEUS_BEARER_TOKEN_FILE") => {
    const path = env[variable];
    if (path === undefined) return undefined;
    try {
      return readFile(path).trim();
    } catch (error) {
      throw new ConfigError(variable, `names a file that cannot be read: ${(error as Error).message}`);
    }
  };
  const bearerToken = file("PROMETHEUS_BEARER_TOKEN_FILE");
  if (bearerToken !== undefined && !isToken(bearerToken)) throw new ConfigError("PROMETHEUS_BEARER_TOKEN_FILE", "names a file that does not hold one token (visible ASCII characters, no spaces)");
  let ca: string | undefined;
  if (env.PROMETHEUS_CA_FILE !== undefined) {
    try {
      ca = readFileSync(env.PROMETHEUS_CA_FILE, "utf8");
    } catch (error) {
      throw new ConfigError("PROMETHEUS_CA_FILE", `names a file that cannot be read: ${(error as Error).message}`);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError("PROMETHEUS_CA_FILE", "names a file that holds no PEM certificate");
  }
  return Object.freeze({
    url: url.replace(/\/+$/, ""),
    ...(bearerToken === undefined ? {} : { bearerToken }),
    ...(ca === undefined ? {} : { ca }),
    timeoutMs: seconds(env, "PROMETHEUS_TIMEOUT", "2"),
    scrapeIntervalMs: seconds(env, "PROMETHEUS_SCRAPE_INTERVAL", "30"),
  });
}

/** Only our variables, and only those set: an empty value is a value (and usually an error). */
function pickDefined(env: Env): Record<string, string> {
  const result: Record<string, string> = {};
  for (const name of KNOWN_VARIABLES) {
    const value = env[name];
    if (value !== undefined) result[name] = value;
  }
  return result;
}

function checkUrlTemplate(template: string, account: string | undefined, dryRun: boolean): void {
  if (!template.includes("{app_id}")) {
    throw new ConfigError("OPTUNE_URL", `must contain {app_id}: the message body does not name the application, got ${shown("OPTUNE_URL", template)}`);
  }
  if (template.includes("{acct}") && account === undefined && !dryRun) {
    throw new ConfigError("OPTUNE_ACCOUNT", "must be set: OPTUNE_URL contains {acct}");
  }
  if (account !== undefined && (/^[a-z][a-z0-9+.-]*:\/\//i.test(account) || account.includes("/"))) {
    throw new ConfigError("OPTUNE_ACCOUNT", accountIsNotUrl(account));
  }
  if (account === "." || account === "..") {
    throw new ConfigError("OPTUNE_ACCOUNT", `cannot be "${account}": URL parsers remove such a path segment, so messages would go to another URL`);
  }
  let url: URL;
  try {
    url = new URL(template.replaceAll("{acct}", "optune-acct-placeholder").replaceAll("{app_id}", "optune-app-placeholder"));
  } catch {
    throw new ConfigError("OPTUNE_URL", `is not a valid URL template, got ${shown("OPTUNE_URL", template)}`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new ConfigError("OPTUNE_URL", "must not hold a user:password@ part (not shown): the token goes in OPTUNE_AUTH_TOKEN");
  }
  // The app id and account are path segments: anywhere else they could change the host, query or fragment.
  for (const [placeholder, marker] of [["{acct}", "optune-acct-placeholder"], ["{app_id}", "optune-app-placeholder"]] as const) {
    if (template.split(placeholder).length !== url.pathname.split(marker).length) {
      throw new ConfigError("OPTUNE_URL", `may hold ${placeholder} only in its path, got ${shown("OPTUNE_URL", template)}`);
    }
  }
}

/** The account is the name Optune gives it (one path segment of OPTUNE_URL), never a URL: say which name was meant. */
function accountIsNotUrl(account: string): string {
  let host: string | undefined;
  try {
    host = new URL(/:\/\//.test(account) ? account : `https://${account}`).hostname || undefined;
  } catch {
    host = undefined;
  }
  const guess = host === undefined ? "" : `; did you mean ${host}?`;
  return `is the account name, one path segment of OPTUNE_URL (e.g. acme.example.com), not a URL or a path: got ${JSON.stringify(account.slice(0, 128).replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1***@"))}${guess}`;
}

/** A value as an error may show it: never a secret, never the user:password@ of a URL. */
function shown(variable: string, value: string | undefined): string {
  if (SECRET.has(variable)) return "a value that is not shown";
  return JSON.stringify(variable === "OPTUNE_URL" ? value?.replace(/^([a-z]+:\/\/)[^/@]*@/i, "$1***@") : value);
}

/** Claims in annotations when the Kubernetes API is there; never in a dry run, which must write nothing. */
function dedupeMode(requested: string | undefined, kubeconfig: KubeconfigSource | undefined, dryRun: boolean): Config["dedupe"] {
  if (requested === "annotation") {
    if (dryRun) throw new ConfigError("OPTUNE_DEDUPE", "cannot be annotation in a dry run: it would mark pods as reported without reporting them");
    if (kubeconfig === undefined) {
      throw new ConfigError("OPTUNE_DEDUPE", "is annotation, but no Kubernetes configuration was found (not in a cluster, no KUBECONFIG, no ~/.kube/config)");
    }
    return "annotation";
  }
  if (requested === "memory" || dryRun) return "memory";
  return kubeconfig === undefined ? "memory" : "annotation";
}

function authToken(env: Record<string, string>, readFile: (path: string) => string): string | undefined {
  const file = env.OPTUNE_AUTH_TOKEN_FILE;
  if (file === undefined) return env.OPTUNE_AUTH_TOKEN;
  if (env.OPTUNE_AUTH_TOKEN !== undefined) {
    throw new ConfigError("OPTUNE_AUTH_TOKEN_FILE", "cannot be set together with OPTUNE_AUTH_TOKEN: set one of them");
  }
  let token: string;
  try {
    token = readFile(file).trim();
  } catch (error) {
    throw new ConfigError("OPTUNE_AUTH_TOKEN_FILE", `names a file that cannot be read: ${(error as Error).message}`);
  }
  if (!isToken(token)) throw new ConfigError("OPTUNE_AUTH_TOKEN_FILE", `names a file that does not hold one token (visible ASCII characters, no spaces): ${file}`);
  return token;
}

/** A token as it may go in a header: visible ASCII, no spaces. */
export function isToken(value: string): boolean {
  return /^[\x21-\x7e]{1,4096}$/.test(value);
}

/** Reads a token file, refusing one too big to hold a token. */
export function readTokenFile(path: string): string {
  const { size } = statSync(path);
  if (size > MAX_TOKEN_FILE_BYTES) throw new Error(`it is ${size} bytes, more than ${MAX_TOKEN_FILE_BYTES}`);
  return readFileSync(path, "utf8");
}

function appIdPath(spec: string): AppIdPath {
  try {
    return parseAppIdPath(spec);
  } catch (error) {
    throw new ConfigError("OPTUNE_APP_ID", `${(error as Error).message}, got ${JSON.stringify(spec)}`);
  }
}

function portNumber(env: Record<string, string>, variable: "PORT" | "WEBHOOK_PORT", fallback: string): number {
  const port = Number(env[variable] ?? fallback);
  if (port > 65535) throw new ConfigError(variable, `must be a TCP port number, got ${JSON.stringify(env[variable])}`);
  return port;
}

/** "min,max,step" with 0 < min < max and 0 < step <= max - min. */
function settingRange(env: Record<string, string>, variable: "OPTUNE_CPU_RANGE" | "OPTUNE_MEM_RANGE", fallback: string, unit: string): SettingRange {
  const value = env[variable] ?? fallback;
  const [min = NaN, max = NaN, step = NaN] = value.split(",").map(Number);
  if (!(min > 0 && max > min && step > 0 && step <= max - min && Number.isFinite(max))) {
    throw new ConfigError(variable, `must be min,max,step in ${unit} with 0 < min < max and 0 < step <= max - min, e.g. ${JSON.stringify(fallback)}, got ${JSON.stringify(value)}`);
  }
  return Object.freeze({ min, max, step });
}

/** A duration setting in milliseconds: above 0 and at most its bound. */
function seconds(env: Record<string, string>, variable: keyof typeof MAX_SECONDS, fallback: string): number {
  const value = env[variable] ?? fallback;
  const ms = Math.round(Number(value) * 1000);
  if (!(ms > 0)) throw new ConfigError(variable, `must be a number of seconds greater than 0, got ${JSON.stringify(value)}`);
  if (ms > MAX_SECONDS[variable] * 1000) throw new ConfigError(variable, `must be at most ${MAX_SECONDS[variable]} seconds, got ${JSON.stringify(value)}`);
  return ms;
}
