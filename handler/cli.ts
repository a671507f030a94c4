#!/usr/bin/env node
// The command line: `serve` (the function, the default), `webhook` (the admission webhook),
// `invoke` and `admit` (the same on files, no server), `sweep`, and `demo` (the whole loop
// against a local Optune stand-in).
import { constants } from "node:os";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, type Config } from "./config.js";

const USAGE = `usage: servo-k8s-multijob [serve]                     run the HTTP function on $PORT (default 8080)
       servo-k8s-multijob webhook                      run the admission webhook (HTTPS) on $WEBHOOK_PORT (default 8443)
       servo-k8s-multijob invoke [--dry-run] FILE...   handle CloudEvent/Pod JSON files in-process
       servo-k8s-multijob admit [--dry-run] FILE...    admit AdmissionReview/Pod JSON files in-process
       servo-k8s-multijob sweep [--dry-run]            report finished jobs the events missed (needs the Kubernetes API)
       servo-k8s-multijob demo [FILE...]               replay example events against a local Optune receiver

Configuration comes from the environment (OPTUNE_URL, OPTUNE_ACCOUNT, OPTUNE_AUTH_TOKEN, POD_NAMESPACES,
OPTUNE_APP_ID, ...); see README.md. Without OPTUNE_ACCOUNT and OPTUNE_URL nothing is sent: every message
is printed to stdout as {"url": ..., "message": ...}.
`;

const out = (line: string) => process.stdout.write(line);
const err = (line: string) => process.stderr.write(line);

async function main(argv: readonly string[]): Promise<number> {
  const [command = "serve", ...rest] = argv;
  switch (command) {
    case "serve":
      return serve(rest);
    case "webhook":
      return webhook(rest);
    case "admit":
      return admitCommand(rest);
    case "invoke":
      return invokeCommand(rest);
    case "sweep":
      return sweepCommand(rest);
    case "demo": {
      const { demo } = await import("./demo.js");
      return demo(rest, out);
    }
    case "help":
    case "--help":
    case "-h":
      out(USAGE);
      return 0;
    default:
      err(`servo-k8s-multijob: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

async function serve(args: readonly string[]): Promise<number> {
  if (args.length > 0) return usageError(`serve takes no arguments, got ${args.join(" ")}`);
  return runUntilSignalled(async (config) => (await import("./measure/lifecycle.js")).startFunction(config, { print: out }));
}

async function webhook(args: readonly string[]): Promise<number> {
  if (args.length > 0) return usageError(`webhook takes no arguments, got ${args.join(" ")}`);
  return runUntilSignalled(async (config) => (await import("./adjust/webhook.js")).startWebhook(config, { print: out }));
}

/** Starts a server, runs it until the first signal, stops it within SHUTDOWN_TIMEOUT. */
async function runUntilSignalled(start: (config: Config) => Promise<{ stop(reason: string): Promise<void> }>): Promise<number> {
  const config = loadConfig(process.env);
  const signalled = untilSignalled(config.shutdownTimeoutMs);
  const running = await start(config);
  await running.stop(`signal ${constants.signals[await signalled]}`);
  // Stopped: nothing is left to do, whatever sockets a hung remote still holds open.
  setTimeout(() => process.exit(0), 100).unref();
  return 0;
}

/**
 * The first SIGTERM or SIGINT, listened for before any server starts so none is lost. A second
 * one exits at once; and should anything hold the process past the shutdown bound, it still ends.
 */
function untilSignalled(shutdownTimeoutMs: number): Promise<NodeJS.Signals> {
  return new Promise<NodeJS.Signals>((resolve) => {
    const first = (signal: NodeJS.Signals) => {
      const now = (again: NodeJS.Signals) => process.exit(128 + constants.signals[again]);
      process.off("SIGTERM", first).off("SIGINT", first).once("SIGTERM", now).once("SIGINT", now);
      setTimeout(() => {
        err("servo-k8s-multijob: still running after SHUTDOWN_TIMEOUT; exiting\n");
        process.exit(1);
      }, shutdownTimeoutMs + 2000).unref();
      resolve(signal);
    };
    process.once("SIGTERM", first).once("SIGINT", first);
  });
}

/** The `--dry-run` flag and the positional arguments of invoke and sweep; a usage error is a string. */
function dryRunArgs(args: readonly string[], allowPositionals: boolean): { dryRun: boolean; files: string[] } | string {
  try {
    const parsed = parseArgs({ args: [...args], options: { "dry-run": { type: "boolean" } }, allowPositionals });
    return { dryRun: parsed.values["dry-run"] === true, files: parsed.positionals };
  } catch (error) {
    return (error as Error).message;
  }
}

async function invokeCommand(args: readonly string[]): Promise<number> {
  const parsed = dryRunArgs(args, true);
  if (typeof parsed === "string") return usageError(parsed);
  if (parsed.files.length === 0) return usageError("invoke needs at least one FILE");
  const { invoke } = await import("./measure/invoke.js");
  return invoke(parsed.files, loadConfig(process.env, { dryRun: parsed.dryRun }), { stdout: out, stderr: err });
}

async function admitCommand(args: readonly string[]): Promise<number> {
  const parsed = dryRunArgs(args, true);
  if (typeof parsed === "string") return usageError(parsed);
  if (parsed.files.length === 0) return usageError("admit needs at least one FILE");
  const { admitFiles } = await import("./adjust/admit-files.js");
  return admitFiles(parsed.files, loadConfig(process.env, { dryRun: parsed.dryRun }), { stdout: out, stderr: err });
}

async function sweepCommand(args: readonly string[]): Promise<number> {
  const parsed = dryRunArgs(args, false);
  if (typeof parsed === "string") return usageError(parsed);
  const [{ createFunction }, { describeOutcome }, { retryAfterSeconds }] = await Promise.all([import("./measure/function.js"), import("./measure/invoke.js"), import("./measure/handle.js")]);
  const fn = createFunction(loadConfig(process.env, { dryRun: parsed.dryRun }), { print: out, logLine: err, echo: true });
  const outcome = await fn.handle({ kind: "sweep" });
  err(`${describeOutcome(outcome)}\n`);
  if (outcome.kind === "ignored") return 2;
  return retryAfterSeconds(outcome) === undefined ? 0 : 1;
}

function usageError(message: string): number {
  err(`servo-k8s-multijob: ${message}\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      err(`servo-k8s-multijob: invalid configuration: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      err(`servo-k8s-multijob: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
