// Configuration from the environment (SPEC.md section 5), read and validated once at start into a
// frozen object. An invalid value is a ConfigError naming the variable; the CLI prints it and exits.
import { readFileSync } from "node:fs";
import { parseAppIdPath, type AppIdPath } from "./app-id.js";
import { ENV_SCHEMA } from "./config-schema.js";
// Generated from ENV_SCHEMA by ajv at build time (compile-config-schema.ts): compiling at start
// would cost ~95 ms of every cold start (ajv import + compile), half of the function's start time.
import validateEnv from "./config-validate.js";
import type { JobCriteria } from "./job.js";
import { findKubeconfig, type KubeconfigSource } from "./kubernetes.js";
import type { LogLevel } from "./log.js";

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
  /** Bound on all attempts of one delivery, backoff included. */
  readonly sendDeadlineMs: number;
  /** Where the Kubernetes API is, if anywhere (Reference mode, claims and the sweep need it). */
  readonly kubeconfig: KubeconfigSource | undefined;
  /** How one report per job is kept: claims in the pod's annotations, or this process's memory. */
  readonly dedupe: "annotation" | "memory";
  /** A `sending` claim older than this was left by an instance that died: it may be taken over. */
  readonly claimTtlMs: number;
  /** The sweep reports only jobs that finished this recently. */
  readonly sweepMaxAgeMs: number;
}

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
}

/** Reads the configuration from `env`; throws ConfigError. */
export function loadConfig(env: Env, options: LoadOptions = {}): Config {
  const relevant = pickDefined(env);
  if (!validateEnv(relevant)) {
    const variable = validateEnv.errors?.[0]?.instancePath.slice(1) ?? "configuration";
    const property = ENV_SCHEMA.properties[variable as keyof typeof ENV_SCHEMA.properties];
    throw new ConfigError(variable, `${property?.description ?? "is invalid"}, got ${JSON.stringify(relevant[variable])}`);
  }

  const optuneUrl = relevant.OPTUNE_URL ?? DEFAULT_OPTUNE_URL;
  const account = relevant.OPTUNE_ACCOUNT;
  const dryRun = options.dryRun === true || (account === undefined && relevant.OPTUNE_URL === undefined);
  checkUrlTemplate(optuneUrl, account, dryRun);

  const appIdSpec = relevant.OPTUNE_APP_ID ?? DEFAULT_APP_ID;
  const port = Number(relevant.PORT ?? "8080");
  if (port > 65535) throw new ConfigError("PORT", `must be a TCP port number, got ${JSON.stringify(relevant.PORT)}`);
  const sendDeadlineMs = seconds("OPTUNE_SEND_DEADLINE", relevant.OPTUNE_SEND_DEADLINE ?? "30");
  const claimTtlMs = seconds("OPTUNE_CLAIM_TTL", relevant.OPTUNE_CLAIM_TTL ?? "120");
  if (claimTtlMs <= sendDeadlineMs) {
    throw new ConfigError("OPTUNE_CLAIM_TTL", `must be longer than OPTUNE_SEND_DEADLINE (${sendDeadlineMs / 1000} s): a claim must outlive the delivery it guards`);
  }
  const kubeconfig = findKubeconfig(env, options.exists);

  return Object.freeze({
    optuneUrl,
    account,
    authToken: authToken(relevant, options.readFile ?? ((path) => readFileSync(path, "utf8"))),
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
    sendTimeoutMs: seconds("OPTUNE_SEND_TIMEOUT", relevant.OPTUNE_SEND_TIMEOUT ?? "10"),
    sendDeadlineMs,
    kubeconfig,
    dedupe: dedupeMode(relevant.OPTUNE_DEDUPE, kubeconfig, dryRun),
    claimTtlMs,
    sweepMaxAgeMs: seconds("OPTUNE_SWEEP_MAX_AGE", relevant.OPTUNE_SWEEP_MAX_AGE ?? "3600"),
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
    throw new ConfigError("OPTUNE_URL", `must contain {app_id}: the message body does not name the application, got ${JSON.stringify(template)}`);
  }
  if (template.includes("{acct}") && account === undefined && !dryRun) {
    throw new ConfigError("OPTUNE_ACCOUNT", "must be set: OPTUNE_URL contains {acct}");
  }
  try {
    new URL(template.replaceAll("{acct}", "acct").replaceAll("{app_id}", "app"));
  } catch {
    throw new ConfigError("OPTUNE_URL", `is not a valid URL template, got ${JSON.stringify(template)}`);
  }
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
  if (!/^\S+$/.test(token)) throw new ConfigError("OPTUNE_AUTH_TOKEN_FILE", `names a file that does not hold one token: ${file}`);
  return token;
}

function appIdPath(spec: string): AppIdPath {
  try {
    return parseAppIdPath(spec);
  } catch (error) {
    throw new ConfigError("OPTUNE_APP_ID", `${(error as Error).message}, got ${JSON.stringify(spec)}`);
  }
}

function seconds(variable: string, value: string): number {
  const ms = Math.round(Number(value) * 1000);
  if (!(ms > 0)) throw new ConfigError(variable, `must be a number of seconds greater than 0, got ${JSON.stringify(value)}`);
  return ms;
}
