// The credentials of the Kubernetes calls that change while the function runs, read here rather
// than by the client: the in-cluster service account token (the kubelet rotates the file; the
// client reads it again only every 60 s) and exec plugins (cloud IAM tokens; the client runs one
// for every concurrent call, with no time limit, and again for every call when the plugin gives
// no expirationTimestamp). Each is read within a time limit, one run shared by every call that
// waits for it, kept as long as the plugin says, and read again at once after a 401.
// https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { isRecord } from "../jobs/pod.js";

/** What a call sends besides what the client applies: a bearer token, or a client certificate. */
export interface Credential {
  readonly token?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface CredentialSource {
  /** The credential to send now. */
  current(): Promise<Credential>;
  /** The API server answered 401 to a call made with `credential`: the next call reads it again. */
  rejected(credential: Credential): void;
}

/** The `exec` of a kubeconfig user, as the client parses it. */
export interface ExecConfig {
  readonly command: string;
  readonly args?: readonly string[];
  readonly env?: readonly { readonly name: string; readonly value: string }[];
  readonly apiVersion?: string;
}

/** The most a plugin may print. */
const MAX_PLUGIN_OUTPUT = 1024 * 1024;
/** After a plugin failed, calls fail with its error for this long instead of starting another. */
export const FAILED_PLUGIN_MS = 2000;

/**
 * The current user's rotating credential, taken over from the client (which then applies only the
 * rest: CA, client certificate files, TLS server name, proxy), or undefined when there is none.
 */
export function takeOverCredentials(config: KubeConfig, options: { readonly timeoutMs: number; readonly signal?: AbortSignal; readonly now?: () => number }): CredentialSource | undefined {
  const user = config.getCurrentUser();
  if (user === null) return undefined;
  const exec = user.exec as unknown;
  const tokenFile = isRecord(user.authProvider) && user.authProvider.name === "tokenFile" && isRecord(user.authProvider.config) ? user.authProvider.config.tokenFile : undefined;
  let source: CredentialSource;
  if (isExecConfig(exec)) source = execCredentials(() => runExecPlugin(exec, options.timeoutMs, options.signal), options.now);
  else if (exec !== undefined && exec !== null) source = refusedCredentials("the kubeconfig user's exec is not valid: it needs a command, and its args and env must be strings");
  else if (typeof tokenFile === "string") source = tokenFileCredentials(tokenFile);
  else return undefined;
  config.users = config.users.map((each) => (each.name === user.name ? { ...user, exec: undefined, authProvider: undefined } : each));
  return source;
}

function isExecConfig(value: unknown): value is ExecConfig {
  if (!isRecord(value) || typeof value.command !== "string" || value.command === "") return false;
  const args = value.args === undefined || value.args === null || (Array.isArray(value.args) && value.args.every((arg) => typeof arg === "string"));
  const env = value.env === undefined || value.env === null || (Array.isArray(value.env) && value.env.every((entry) => isRecord(entry) && typeof entry.name === "string" && typeof entry.value === "string"));
  return args && env;
}

/** A credential that cannot be had: every call fails with `reason` (rather than the client running what it can make of it). */
function refusedCredentials(reason: string): CredentialSource {
  return { current: () => Promise.reject(new Error(reason)), rejected: () => {} };
}

/** The service account token, read from its file each time it is asked for (at most once a second, and after a 401). */
export function tokenFileCredentials(path: string): CredentialSource {
  return {
    current: async () => ({ token: checkedToken((await readFile(path, "utf8")).trim(), `the token file ${basename(path)}`) }),
    rejected: () => {},
  };
}

/** An exec plugin's credential: one run at a time, shared; kept until its expirationTimestamp (none: until a 401). */
export function execCredentials(run: () => Promise<string>, now: () => number = Date.now): CredentialSource {
  let cached: { readonly credential: Credential; readonly until: number } | undefined;
  let failed: { readonly error: Error; readonly until: number } | undefined;
  let running: Promise<Credential> | undefined;
  return {
    current() {
      if (cached !== undefined && cached.until > now()) return Promise.resolve(cached.credential);
      if (failed !== undefined && failed.until > now()) return Promise.reject(failed.error);
      return (running ??= run()
        .then(
          (output) => {
            cached = parseExecCredential(output);
            failed = undefined;
            return cached.credential;
          },
          (error: Error) => {
            failed = { error, until: now() + FAILED_PLUGIN_MS };
            throw error;
          },
        )
        .finally(() => (running = undefined)));
    },
    rejected(credential) {
      if (cached?.credential === credential) cached = undefined;
    },
  };
}

/** What a plugin printed (an ExecCredential), as a credential and until when it holds; throws with a reason otherwise. */
export function parseExecCredential(output: string): { readonly credential: Credential; readonly until: number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(output);
  } catch {
    throw new Error("the exec plugin did not print JSON");
  }
  const status = isRecord(parsed) && isRecord(parsed.status) ? parsed.status : undefined;
  if (status === undefined) throw new Error("the exec plugin printed no ExecCredential status");
  const { token, clientCertificateData: cert, clientKeyData: key, expirationTimestamp } = status;
  const credential: { token?: string; cert?: string; key?: string } = {};
  if (token !== undefined && token !== "") credential.token = checkedToken(token, "the exec plugin's token");
  if (typeof cert === "string" && typeof key === "string" && cert !== "" && key !== "") Object.assign(credential, { cert, key });
  else if (cert !== undefined || key !== undefined) throw new Error("the exec plugin printed a client certificate without its key, or a key without its certificate");
  if (credential.token === undefined && credential.cert === undefined) throw new Error("the exec plugin printed neither a token nor a client certificate");
  if (expirationTimestamp === undefined) return { credential, until: Infinity };
  const until = typeof expirationTimestamp === "string" ? Date.parse(expirationTimestamp) : NaN;
  if (!Number.isFinite(until)) throw new Error("the exec plugin's expirationTimestamp is not a time");
  return { credential, until };
}

/** A token as an Authorization header carries it: visible ASCII, bounded; never quoted in the message. */
function checkedToken(token: unknown, what: string): string {
  if (typeof token !== "string" || !/^[\x21-\x7e]{1,16384}$/.test(token)) throw new Error(`${what} is not one token (visible ASCII, at most 16384 characters)`);
  return token;
}

/**
 * Runs a plugin as kubectl does (non-interactive: no stdin, KUBERNETES_EXEC_INFO set), killed when
 * it takes longer than `timeoutMs` or the function stops; its standard output, bounded.
 */
export function runExecPlugin(exec: ExecConfig, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  const name = printableName(basename(exec.command));
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(Object.assign(new Error("the function is stopping"), { name: "AbortError" }));
    const info = JSON.stringify({ apiVersion: exec.apiVersion ?? "client.authentication.k8s.io/v1", kind: "ExecCredential", spec: { interactive: false } });
    const env = { ...process.env, ...Object.fromEntries((exec.env ?? []).map(({ name: variable, value }) => [variable, value])), KUBERNETES_EXEC_INFO: info };
    const plugin = spawn(exec.command, [...(exec.args ?? [])], { env, stdio: ["ignore", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    let size = 0;
    let stderr = "";
    let failure: Error | undefined;
    const stop = (error: Error) => {
      failure ??= error;
      plugin.kill("SIGKILL");
    };
    const timer = setTimeout(() => stop(Object.assign(new Error(`the exec plugin ${name} gave no credential within ${timeoutMs} ms`), { name: "TimeoutError" })), timeoutMs);
    const stopping = () => stop(Object.assign(new Error("the function is stopping"), { name: "AbortError" }));
    signal?.addEventListener("abort", stopping, { once: true });
    plugin.stdout.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_PLUGIN_OUTPUT) stop(new Error(`the exec plugin ${name} printed more than ${MAX_PLUGIN_OUTPUT} bytes`));
      else stdout.push(chunk);
    });
    plugin.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString("utf8");
    });
    plugin.on("error", (error) => stop(new Error(`cannot run the exec plugin ${name}: ${(error as NodeJS.ErrnoException).code ?? "error"}`)));
    plugin.on("close", (code) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", stopping);
      if (failure !== undefined) return reject(failure);
      if (code !== 0) return reject(new Error(`the exec plugin ${name} exited with ${code}: ${printableName(stderr.trim().split("\n")[0] ?? "")}`));
      resolve(Buffer.concat(stdout).toString("utf8"));
    });
  });
}

/** A plugin's name or message as a log line may carry it: printable ASCII, clipped. */
function printableName(text: string): string {
  const ascii = text.replace(/[^\x20-\x7e]/g, "?");
  return ascii.length > 200 ? `${ascii.slice(0, 200)}…` : ascii;
}
