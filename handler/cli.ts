#!/usr/bin/env node
// The command line. Servers: `serve` (the function, the default) and `webhook` (the admission
// webhook). On files, no server: `invoke` and `admit`. Against a cluster: `sweep`. For a
// deployment: `manifests`. On a laptop: `demo`. Every command answers --help.
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError, loadConfig, type Config } from "./edges/config.js";
import { startWarnings } from "./edges/config-warnings.js";
import { createLogger } from "./edges/log.js";
import { MANIFEST_FLAGS } from "./deploy/flags.js";

const out = (line: string) => process.stdout.write(line);
const err = (line: string) => process.stderr.write(line);

type Options = NonNullable<ParseArgsConfig["options"]>;
type Values = Record<string, string | boolean | string[] | undefined>;

interface Command {
  /** The synopsis after the program name, and what it does in one line. */
  readonly synopsis: string;
  readonly summary: string;
  /** More lines for `COMMAND --help`. */
  readonly details: string;
  readonly options: Options;
  readonly positionals: "none" | "files" | "any";
  run(values: Values, positionals: string[]): Promise<number>;
}

const CONFIGURATION = `Configuration comes from the environment (OPTUNE_URL, OPTUNE_ACCOUNT, OPTUNE_AUTH_TOKEN, POD_NAMESPACES,
OPTUNE_APP_ID, ...); see README.md. Without OPTUNE_ACCOUNT and OPTUNE_URL nothing is sent: every message
is printed to stdout as {"url": ..., "message": ...}.`;

const COMMANDS: Readonly<Record<string, Command>> = {
  serve: {
    synopsis: "serve",
    summary: "run the function: CloudEvents over HTTP on $PORT (default 8080)",
    details: "Stops on SIGTERM or SIGINT within SHUTDOWN_TIMEOUT (25 s); a second signal stops it at once.",
    options: {},
    positionals: "none",
    run: () => runUntilSignalled("PORT", async (config) => (await import("./measure/lifecycle.js")).startFunction(config, { print: out })),
  },
  webhook: {
    synopsis: "webhook",
    summary: "run the admission webhook: AdmissionReviews over HTTPS on $WEBHOOK_PORT (default 8443)",
    details: "Reads its certificate and key from WEBHOOK_TLS_CERT_FILE and WEBHOOK_TLS_KEY_FILE, again when they change.",
    options: {},
    positionals: "none",
    run: () => runUntilSignalled("WEBHOOK_PORT", async (config) => (await import("./adjust/webhook.js")).startWebhook(config, { print: out })),
  },
  "dead-letters": {
    synopsis: "dead-letters",
    summary: "run the Broker's dead-letter sink: logs each event it gets (its id, type and pod, never the pod; a batch in one line) on $PORT",
    details: "manifests --broker deploys it from this image. Answers 202 to everything, so the Broker stops retrying.",
    options: {},
    positionals: "none",
    run: () => runUntilSignalled("PORT", async (config) => (await import("./measure/dead-letters.js")).startDeadLetters(config)),
  },
  invoke: {
    synopsis: "invoke [--send] [--cluster] [--to URL] FILE...",
    summary: "handle CloudEvents, Pods or Lists of Pods from files (- is stdin), JSON or YAML",
    details: `In-process by default, and dry: each message Optune would get is printed, nothing is sent.
  --send       deliver the messages to Optune (OPTUNE_URL, OPTUNE_ACCOUNT)
  --cluster    use the Kubernetes cluster of your kubeconfig for claims, as the function does;
               without it invoke never touches a cluster
  --to URL     send the events to a running function instead, over HTTP in binary mode as an
               ApiServerSource does, and print its answers (like func invoke)
  --dry-run    the default; kept for scripts
Exit codes: 0 handled, 1 a delivery failed (or a function answered other than 2xx), 2 bad input, or
--send with nowhere to send to (nothing is sent then; a file over 4 MiB is bad input). YAML is read
as kubectl reads it (YAML 1.1).`,
    options: { send: { type: "boolean" }, cluster: { type: "boolean" }, to: { type: "string" }, "dry-run": { type: "boolean" } },
    positionals: "files",
    async run(values, files) {
      const invoke = await import("./measure/invoke.js");
      const io = { stdout: out, stderr: err, stdin: () => process.stdin };
      if (typeof values.to === "string") {
        if (values.send === true || values.cluster === true) return usageError("invoke", "--to sends the events to a running function: it delivers and claims there, so --send and --cluster do not apply");
        if (!/^https?:\/\/\S+$/.test(values.to)) return usageError("invoke", `--to must be an http:// or https:// URL, got ${JSON.stringify(values.to)}`);
        return invoke.invokeRemote(files, values.to, io);
      }
      if (values.send === true && values["dry-run"] === true) return usageError("invoke", "--send and --dry-run contradict each other");
      const config = loadConfig(process.env, { dryRun: values.send !== true, kubernetes: values.cluster === true });
      for (const warning of startWarnings(process.env, config)) err(`servo-k8s-multijob invoke: warning: ${warning}\n`);
      if (values.send === true && config.dryRun) {
        err("servo-k8s-multijob invoke: --send, but neither OPTUNE_ACCOUNT nor OPTUNE_URL is set: there is nowhere to send to; set OPTUNE_ACCOUNT (and OPTUNE_AUTH_TOKEN), or leave out --send for a dry run\n");
        return 2;
      }
      if (values.cluster === true && config.dryRun) err("servo-k8s-multijob invoke: a dry run (no --send): --cluster makes no cluster request, claims are neither read nor written, nothing is sent\n");
      return invoke.invoke(files, config, io);
    },
  },
  admit: {
    synopsis: "admit [--dry-run] [--adjust cpu=CORES,mem=QUANTITY] FILE...",
    summary: "run the webhook's admission on new Pods or AdmissionReviews from files (- is stdin), JSON or YAML",
    details: `In-process. Prints one JSON line per pod (the result, the settings applied, the JSON Patch and the
job container's resources before and after it) and says the same in words on stderr.
  --dry-run    print the Optune messages instead of sending them (WHATS_NEXT is then taken as MEASURE)
  --adjust cpu=1.5,mem=512Mi
               a dry run in which Optune answers DESCRIBE, then ADJUST to these settings, then MEASURE:
               shows the patch the webhook would write. cpu in cores or millicores, mem in bytes or with
               a binary suffix (Ki, Mi, Gi); each on the step of its range (OPTUNE_CPU_RANGE,
               OPTUNE_MEM_RANGE: 4096 bytes by default, so a decimal 1G = 10^9 bytes is refused, as
               Optune's ADJUST would be)
Exit codes: 0 admitted, 1 Optune failed for a pod (the webhook would admit it unchanged), 2 bad input
(nothing is asked then; a file over 4 MiB is bad input). YAML is read as kubectl reads it (YAML 1.1).
Example: servo-k8s-multijob admit --adjust cpu=1.5,mem=512Mi example/admission/new-job-pod.json
Example: servo-k8s-multijob admit --adjust cpu=1500m,mem=1Gi example/admission/new-job-pod.json
Example: servo-k8s-multijob admit --adjust cpu=2,mem=536870912 example/admission/new-job-pod.json`,
    options: { "dry-run": { type: "boolean" }, adjust: { type: "string" } },
    positionals: "files",
    async run(values, files) {
      const [{ admitFiles }, { parseSampleSettings }] = await Promise.all([import("./adjust/admit-files.js"), import("./adjust/sample-answers.js")]);
      const sample = typeof values.adjust === "string" ? parseSampleSettings(values.adjust) : undefined;
      if (typeof sample === "string") return usageError("admit", sample);
      const config = loadConfig(process.env, { dryRun: values["dry-run"] === true || sample !== undefined });
      return admitFiles(files, config, { stdout: out, stderr: err, stdin: () => process.stdin }, sample === undefined ? {} : { sample });
    },
  },
  sweep: {
    synopsis: "sweep [--dry-run]",
    summary: "report finished jobs the events missed (needs the Kubernetes API)",
    details: `Lists the pods of every namespace in POD_NAMESPACES in the cluster of your kubeconfig.
  --dry-run    print what would be reported; write nothing
Exit codes: 0 done, 1 a delivery failed, 2 no sweep possible with this configuration.`,
    options: { "dry-run": { type: "boolean" } },
    positionals: "none",
    async run(values) {
      const [{ createFunction }, { describeOutcome }, { retryAfterSeconds }] = await Promise.all([import("./measure/function.js"), import("./measure/invoke.js"), import("./measure/handle.js")]);
      const fn = createFunction(loadConfig(process.env, { dryRun: values["dry-run"] === true }), { print: out, logLine: err, echo: true });
      const outcome = await fn.handle({ kind: "sweep" });
      fn.close();
      err(`${describeOutcome(outcome)}\n`);
      if (outcome.kind === "ignored") return 2;
      return retryAfterSeconds(outcome) === undefined ? 0 : 1;
    },
  },
  release: {
    synopsis: "release [--namespace NS,...] [--dry-run]",
    summary: "let go of every job pod held for its MEASUREMENT (before an uninstall; needs the Kubernetes API)",
    details: `A job pod being deleted is held (the finalizer optune.ai/measurement) until the function has sent
its MEASUREMENT, at most OPTUNE_HOLD (24 h). Without the function nothing lets them go: run this
before removing it. Lists the pods of every namespace in the cluster of your kubeconfig.
  --namespace NS,...   only these namespaces
  --dry-run            list the held pods; write nothing
Exit codes: 0 every held pod let go, 1 some kept changing (run it again), 2 no kubeconfig or bad flags.`,
    options: { namespace: { type: "string" }, "dry-run": { type: "boolean" } },
    positionals: "none",
    async run(values) {
      const config = loadConfig(process.env, { kubernetes: true });
      if (config.kubeconfig === undefined) return usageError("release", "no Kubernetes configuration was found (KUBECONFIG, ~/.kube/config, or in a pod its service account)");
      const [{ connectKubernetes }, { releaseHeld, ALL_NAMESPACES }] = await Promise.all([import("./edges/kubernetes.js"), import("./measure/release.js")]);
      const namespaces = typeof values.namespace === "string" ? values.namespace.split(",").map((namespace) => namespace.trim()) : [ALL_NAMESPACES];
      const summary = await releaseHeld({ api: connectKubernetes(config.kubeconfig, { timeoutMs: config.kubeApiTimeoutMs }), namespaces, dryRun: values["dry-run"] === true, say: (line) => err(`${line}\n`) });
      err(values["dry-run"] === true
        ? `${summary.held} held pods\n`
        : `${summary.released} of ${summary.held} held pods let go${summary.unreported > 0 ? `, ${summary.unreported} of them without their MEASUREMENT` : ""}${summary.failed > 0 ? `; ${summary.failed} kept changing: run release again` : ""}\n`);
      return summary.failed > 0 ? 1 : 0;
    },
  },
  manifests: {
    synopsis: "manifests [--namespace NS] [--watch NS,...] [--image IMAGE] [--account ACCOUNT] [--target knative|openfaas] [--broker] [--selector SELECTOR] [--webhook] ...",
    summary: "print everything a deployment needs, for kubectl apply -f -",
    details: `  --namespace NS          where the function runs, never a watched one (default optune-servo)
  --watch NS,...          the namespaces whose job pods are measured: POD_NAMESPACES (default default)
  --image IMAGE           the image you built and pushed (required but for --target openfaas alone)
  --account ACCOUNT       OPTUNE_ACCOUNT; without it the function runs dry (logs, sends nothing)
  --token-secret NAME     the Secret with the Optune token, key "token" (default optune-auth-token)
  --app-id PATH           OPTUNE_APP_ID (default spec/containers/0/env/[JOBID])
  --target knative|openfaas   a Knative Service (default), or sources for a function on the OpenFaaS gateway
  --openfaas-edition ce|standard   with --target openfaas: ce (default; no ServiceAccount: claims in memory,
                          one replica, no sweep), or standard for Standard and Enterprise: the function's
                          own ServiceAccount (functions-standard.yml), claims in the pods, the sweep, --event-auth
  --broker                a Broker and a Trigger (retries, a dead-letter sink) instead of a direct sink
  --selector SELECTOR     only pods with these labels reach the function, e.g. batch.kubernetes.io/job-name
  --webhook               also the admission webhook that applies Optune's settings (needs cert-manager)
  --pod-monitor           PodMonitors for prometheus-operator (the pods carry prometheus.io/* annotations anyway)
  --prometheus-rules      the alerts and recording rules as a PrometheusRule (example/monitoring/ has them as files)
  --event-auth            only events with a Knative OIDC token for the function are accepted (TokenReview)
  --ingress-namespace NS  where the Knative ingress gateway runs, for the NetworkPolicy (default kourier-system)
  --prometheus-namespace NS   where Prometheus runs, for the NetworkPolicy (default monitoring)
  --prometheus-url URL    PROMETHEUS_URL: each MEASUREMENT gets the run's cpu_time and max_memory from it
  --monitoring-label KEY=VALUE   a label on the PodMonitors and the PrometheusRule, for your Prometheus'
                          selectors (repeatable), e.g. release=kube-prometheus-stack
  --no-patch-policy       leave out the ValidatingAdmissionPolicy that lets the function change only its
                          claim and its finalizer on pods (for clusters older than Kubernetes 1.30)
Every object carries the app.kubernetes.io/* labels (part-of=servo-k8s-multijob): uninstall finds them.
Example: servo-k8s-multijob manifests --image registry.example.com/servo-k8s-multijob:0.3.0 --watch batch,etl --account acme.example.com | kubectl apply -f -`,
    options: MANIFEST_FLAGS,
    positionals: "none",
    async run(values) {
      const { printManifests } = await import("./deploy/print.js");
      return printManifests(values, version(), out, (message) => usageError("manifests", message));
    },
  },
  uninstall: {
    synopsis: "uninstall [--keep FILE]",
    summary: "print every object manifests made that is in the cluster, for kubectl delete -f -",
    details: `Reads the cluster of your kubeconfig and changes nothing: lists the objects labelled
app.kubernetes.io/part-of=servo-k8s-multijob in every namespace, whatever flags installed them, and
prints each (kind, namespace, name) as YAML. Keeps the servo's namespaces and the token Secret in them
(manifests never writes either); delete those yourself when you are done with them.
  --keep FILE   leave out the objects FILE holds (the output of manifests you just applied): what
                remains is what the new flags no longer make, e.g. the Roles of a namespace no
                longer watched
Exit codes: 0 printed (perhaps nothing), 1 the cluster could not be read, 2 bad flags or no kubeconfig.
Example: servo-k8s-multijob uninstall | kubectl delete -f -`,
    options: { keep: { type: "string" } },
    positionals: "none",
    async run(values) {
      const { runUninstall } = await import("./deploy/uninstall-command.js");
      return runUninstall(values, { out, err, usageError: (message) => usageError("uninstall", message) });
    },
  },
  check: {
    synopsis: "check [--pre] [the flags you give manifests] [--optune] [-o json]",
    summary: "check an installation, or with --pre a cluster before installing: what works, what does not, and what to do (like linkerd check)",
    details: `Reads the cluster of your kubeconfig (KUBECONFIG, ~/.kube/config) and changes nothing. Takes every
flag manifests takes (manifests --help), as you gave it to manifests, and repeats them in each fix:
  --namespace NS          where the function runs (default optune-servo)
  --watch NS,...          the watched namespaces (default default)
  --target knative|openfaas
  --webhook               also check the admission webhook: its configuration, caBundle, certificate, replicas
  --pre                   before installing: the Kubernetes version, the APIs these flags need (Knative,
                          cert-manager, prometheus-operator), OpenFaaS's gateway, and whether you may create
                          every object manifests writes (SelfSubjectAccessReview)
  --optune                also send Optune one HELLO with OPTUNE_ACCOUNT and OPTUNE_AUTH_TOKEN from this
                          environment (it is visible in Optune); without it Optune's host is only reached.
                          OPTUNE_URL from this environment, when set, is the URL checked
  -o json                 the results as JSON
Each check is ✔ (passed), ‼ (a warning) or ✖ (failed), with what to do. Each call to the API server
has 5 s for its whole answer, the check 30 s in all. Exit codes: 0 no check failed, 1 a check failed,
2 bad flags or no kubeconfig.`,
    options: { ...MANIFEST_FLAGS, pre: { type: "boolean" }, optune: { type: "boolean" }, output: { type: "string", short: "o" } },
    positionals: "none",
    async run(values) {
      const { runCheck } = await import("./check/command.js");
      return runCheck(values, { out, usageError: (message) => usageError("check", message), version: version() });
    },
  },
  demo: {
    synopsis: "demo [FILE...]",
    summary: "the whole loop on this machine, against a local stand-in for Optune",
    details: "Starts the function and the webhook, adjusts a new pod through the webhook, replays the example events (or FILEs) and shows what Optune would have got.",
    options: {},
    positionals: "any",
    async run(_values, files) {
      const { demo } = await import("./demo/demo.js");
      return demo(files, out);
    },
  },
};

function usage(): string {
  const lines = Object.values(COMMANDS).map((command) => {
    const short = command.synopsis.length > 48 ? `${command.synopsis.split(" ")[0]!} [OPTIONS]` : command.synopsis;
    return `  servo-k8s-multijob ${short.padEnd(44)}  ${command.summary}`;
  });
  return `usage: servo-k8s-multijob COMMAND [OPTIONS]   (COMMAND --help for its options; --version)\n${lines.join("\n")}\n\n${CONFIGURATION}\n`;
}

function commandHelp(command: Command): string {
  return `usage: servo-k8s-multijob ${command.synopsis}\n${command.summary}.\n\n${command.details}\n\n${CONFIGURATION}\n`;
}

/** The version in package.json, which the image ships beside dist/. */
function version(): string {
  const manifest = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return manifest.version;
}

async function main(argv: readonly string[]): Promise<number> {
  const [first = "serve", ...rest] = argv;
  if (first === "--version" || first === "-v" || first === "version") return out(`servo-k8s-multijob ${version()}\n`), 0;
  if (first === "--help" || first === "-h" || first === "help") {
    const topic = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
    out(topic === undefined ? usage() : commandHelp(topic));
    return 0;
  }
  const command = COMMANDS[first];
  if (command === undefined) {
    err(`servo-k8s-multijob: unknown command "${first}"\n${usage()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) return out(commandHelp(command)), 0;
  let parsed;
  try {
    parsed = parseArgs({ args: [...rest], options: command.options, allowPositionals: command.positionals !== "none", strict: true });
  } catch (error) {
    return usageError(first, (error as Error).message);
  }
  if (command.positionals === "files" && parsed.positionals.length === 0) return usageError(first, `${first} needs at least one FILE (or - for stdin)`);
  return command.run(parsed.values as Values, parsed.positionals);
}

/** Starts a server, runs it until the first signal, stops it within SHUTDOWN_TIMEOUT. A port it cannot have is one line naming `portVariable`. */
async function runUntilSignalled(portVariable: string, start: (config: Config) => Promise<{ stop(reason: string): Promise<void> }>): Promise<number> {
  const config = loadConfig(process.env);
  const signalled = untilSignalled(config.shutdownTimeoutMs);
  const log = createLogger(config.logLevel);
  for (const warning of startWarnings(process.env, config)) log.warn(warning);
  let running;
  try {
    running = await start(config);
  } catch (error) {
    const problem = listenProblem(error, portVariable);
    if (problem === undefined) throw error;
    err(`servo-k8s-multijob: ${problem}\n`);
    return 1;
  }
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

/** A port that cannot be had, in one line that says which variable moves it (no stack trace). */
function listenProblem(error: unknown, variable: string): string | undefined {
  const { code, syscall, port } = (error ?? {}) as { code?: unknown; syscall?: unknown; port?: unknown };
  if (syscall !== "listen" || (code !== "EADDRINUSE" && code !== "EACCES")) return undefined;
  const why = code === "EADDRINUSE" ? "another program is listening on it (a port-forward to a gateway often is, on 8080)" : "this user may not listen on it";
  return `cannot listen on port ${String(port)}: ${why}; choose another with ${variable}, e.g. ${variable}=${Number(port) + 1}`;
}

function usageError(name: string, message: string): number {
  err(`servo-k8s-multijob ${name}: ${message}\nusage: servo-k8s-multijob ${COMMANDS[name]?.synopsis ?? name} (${name} --help for more)\n`);
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
