// The `manifests` command's edge: flags to options, options checked, documents printed as YAML with
// a header that says how they were made and what to do before applying them.
import { ConfigError, loadConfig } from "../edges/config.js";
import { unprintableFlag } from "../edges/printable.js";
import { MANIFEST_FLAGS } from "./flags.js";
import { DEFAULT_OPTIONS, eventAudience, eventSenders, functionEnv, imageProblem, manifests, optionsProblem, type ManifestOptions, type OpenFaasEdition, type Release, type Target } from "./manifests.js";

type Values = Record<string, string | boolean | string[] | undefined>;

/** The options the flags say, for the package `version`, or a usage problem. */
/** `imageRequired`: false for `check`, which reads an installation and writes no document. */
export function optionsFrom(values: Values, version: string, imageRequired = true): (ManifestOptions & Release) | string {
  // Every value lands in YAML (and kubectl's YAML 1.1 ends a line at NEL, U+2028 and U+2029 too).
  const unprintable = unprintableFlag(values);
  if (unprintable !== undefined) return unprintable;
  const text = (name: string) => (typeof values[name] === "string" ? (values[name] as string) : undefined);
  const target = text("target") ?? DEFAULT_OPTIONS.target;
  if (target !== "knative" && target !== "openfaas") return `--target must be knative or openfaas, got ${JSON.stringify(target)}`;
  const edition = text("openfaas-edition");
  if (edition !== undefined && edition !== "ce" && edition !== "standard") return `--openfaas-edition must be ce or standard (Standard or Enterprise), got ${JSON.stringify(edition)}`;
  const watch = text("watch");
  const monitoringLabels: Record<string, string> = {};
  for (const label of Array.isArray(values["monitoring-label"]) ? values["monitoring-label"] : []) {
    const [key = "", ...value] = label.split("=");
    if (value.length === 0) return `--monitoring-label ${JSON.stringify(label)} is not KEY=VALUE, e.g. release=kube-prometheus-stack`;
    monitoringLabels[key] = value.join("=");
  }
  const options: ManifestOptions & Release = {
    namespace: text("namespace") ?? DEFAULT_OPTIONS.namespace,
    watch: watch === undefined ? DEFAULT_OPTIONS.watch : watch.split(",").map((namespace) => namespace.trim()),
    ...(text("image") === undefined ? {} : { image: text("image")! }),
    version,
    ...(text("account") === undefined ? {} : { account: text("account")! }),
    tokenSecret: text("token-secret") ?? DEFAULT_OPTIONS.tokenSecret,
    appId: text("app-id") ?? DEFAULT_OPTIONS.appId,
    target: target as Target,
    broker: values.broker === true,
    ...(text("selector") === undefined ? {} : { selector: text("selector")! }),
    webhook: values.webhook === true,
    ...(values["pod-monitor"] === true ? { podMonitor: true } : {}),
    ...(values["no-patch-policy"] === true ? { patchPolicy: false } : {}),
    ...(values["event-auth"] === true ? { eventAuth: true } : {}),
    ...(edition === undefined ? {} : { openfaasEdition: edition as OpenFaasEdition }),
    ...(values["prometheus-rules"] === true ? { prometheusRules: true } : {}),
    ingressNamespace: text("ingress-namespace") ?? DEFAULT_OPTIONS.ingressNamespace!,
    prometheusNamespace: text("prometheus-namespace") ?? DEFAULT_OPTIONS.prometheusNamespace!,
    ...(text("prometheus-url") === undefined ? {} : { prometheusUrl: text("prometheus-url")! }),
    ...(Object.keys(monitoringLabels).length === 0 ? {} : { monitoringLabels }),
  };
  const problem = optionsProblem(options) ?? (imageRequired ? imageProblem(options, options.image) : undefined);
  if (problem !== undefined) return problem;
  // What the function will read must pass its own configuration check.
  const env: Record<string, string> = {};
  for (const entry of functionEnv(options) as Array<{ name: string; value: string }>) env[entry.name] = entry.value;
  if (options.eventAuth === true) env.OPTUNE_EVENT_AUDIENCE = eventAudience(options);
  try {
    // The token file is mounted from the Secret in the pod; here only its name is checked.
    loadConfig(env, { kubernetes: options.eventAuth === true, exists: () => true, readFile: () => "token-from-a-secret" });
  } catch (error) {
    if (error instanceof ConfigError) return error.message.replace(/^OPTUNE_ACCOUNT/, "--account").replace(/^OPTUNE_APP_ID/, "--app-id").replace(/^POD_NAMESPACES/, "--watch").replace(/^PROMETHEUS_URL/, "--prometheus-url");
    throw error;
  }
  return options;
}

/** The YAML for `kubectl apply -f -`: a header, then each document with its comment. */
export async function renderManifests(options: ManifestOptions & Release, command: string = commandLine(options)): Promise<string> {
  const { stringify } = await import("yaml");
  const needs = [
    "Kubernetes >= 1.28",
    options.target === "knative" ? "Knative Serving and Eventing >= 1.12" : "OpenFaaS and Knative Eventing >= 1.12",
    ...(options.eventAuth === true ? ["Knative Eventing >= 1.13 with authentication-oidc: enabled in knative-eventing's config-features ConfigMap"] : []),
    "a network plugin that enforces NetworkPolicy (else the policy is silently ignored)",
    ...(options.webhook ? ["cert-manager >= 1.12"] : []),
    ...(options.podMonitor === true ? ["prometheus-operator (PodMonitor)"] : []),
    ...(options.prometheusRules === true ? ["prometheus-operator (PrometheusRule), kube-state-metrics for NoEventsWhileJobsFinish"] : []),
  ];
  const secret = options.account === undefined || (options.target === "openfaas" && !options.webhook)
    ? []
    : [`#   kubectl create namespace ${options.namespace} && kubectl -n ${options.namespace} create secret generic ${options.tokenSecret} --from-literal=token="$OPTUNE_AUTH_TOKEN"`];
  const header = [
    `# Generated by: ${command}`,
    `# Apply with:   ${command} | tee servo.yaml | kubectl apply -f -`,
    `#   then, on an upgrade, what the new flags no longer make: servo-k8s-multijob uninstall --keep servo.yaml | kubectl delete -f -`,
    `# Remove with:  servo-k8s-multijob uninstall | kubectl delete -f -   (finds every object by its label app.kubernetes.io/part-of=servo-k8s-multijob; ${
      options.target === "openfaas" ? "the function itself: faas-cli remove -f functions.yml" : `keeps the namespace ${options.namespace} and the token Secret`
    })`,
    `# Needs ${needs.join(", ")}.`,
    ...(secret.length > 0 ? ["# Before applying, the Optune token (from your Optune account) as a Secret:", ...secret] : []),
    ...(options.target === "openfaas" ? openfaasHeader(options) : []),
  ];
  const documents = manifests(options).map(({ comment, manifest }) => {
    const lines = comment === "" ? [] : wrap(comment, 98).map((line) => `# ${line}`);
    return [...lines, stringify(manifest, { lineWidth: 0 }).trimEnd()].join("\n");
  });
  return `${header.join("\n")}\n${documents.map((document) => `---\n${document}\n`).join("")}`;
}

export async function printManifests(values: Values, version: string, out: (text: string) => void, usageError: (message: string) => number): Promise<number> {
  const options = optionsFrom(values, version);
  if (typeof options === "string") return usageError(options);
  out(await renderManifests(options));
  return 0;
}

/** How the function itself is deployed on OpenFaaS, and what its stack file must say to match these documents. */
function openfaasHeader(options: ManifestOptions): string[] {
  if (options.openfaasEdition !== "standard") return [`# The function itself is deployed with faas-cli (functions.yml); keep its POD_NAMESPACES at ${options.watch.join(",")}.`];
  return [
    `# The function itself is deployed with faas-cli (functions-standard.yml, OpenFaaS Standard or Enterprise); keep its POD_NAMESPACES at ${options.watch.join(",")}.`,
    ...(options.eventAuth === true ? [`# Add to its environment: OPTUNE_EVENT_AUDIENCE: ${eventAudience(options)}`, `#   OPTUNE_EVENT_SENDERS: ${eventSenders(options).join(",")}`] : []),
  ];
}

/**
 * The command that makes these documents, rebuilt from the checked options (never the raw command
 * line), each value shell-quoted: safe to print in a YAML comment and to paste into a shell.
 */
export function commandLine(options: ManifestOptions & Release): string {
  const flags: string[] = [];
  const value = (flag: string, given: string | undefined, fallback: string | undefined) => {
    if (given !== undefined && given !== fallback) flags.push(`--${flag}`, shellQuoted(given));
  };
  value("namespace", options.namespace, DEFAULT_OPTIONS.namespace);
  value("watch", options.watch.join(","), DEFAULT_OPTIONS.watch.join(","));
  value("image", options.image, undefined);
  value("account", options.account, undefined);
  value("token-secret", options.tokenSecret, DEFAULT_OPTIONS.tokenSecret);
  value("app-id", options.appId, DEFAULT_OPTIONS.appId);
  value("target", options.target, DEFAULT_OPTIONS.target);
  value("openfaas-edition", options.openfaasEdition, undefined);
  value("selector", options.selector, undefined);
  value("ingress-namespace", options.ingressNamespace, DEFAULT_OPTIONS.ingressNamespace);
  value("prometheus-namespace", options.prometheusNamespace, DEFAULT_OPTIONS.prometheusNamespace);
  value("prometheus-url", options.prometheusUrl, undefined);
  for (const [key, label] of Object.entries(options.monitoringLabels ?? {})) value("monitoring-label", `${key}=${label}`, undefined);
  for (const [flag, on] of [["broker", options.broker], ["webhook", options.webhook], ["pod-monitor", options.podMonitor], ["event-auth", options.eventAuth], ["prometheus-rules", options.prometheusRules]] as const) if (on === true) flags.push(`--${flag}`);
  return ["servo-k8s-multijob manifests", ...flags].join(" ");
}

/** A word for a POSIX shell: as it is when it holds only safe characters, else in single quotes. */
export function shellQuoted(word: string): string {
  return /^[A-Za-z0-9_.,:/@%+=-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Every flag `manifests` takes (for tests that feed them all). */
export const MANIFEST_FLAG_NAMES = Object.keys(MANIFEST_FLAGS);

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

