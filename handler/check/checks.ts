// `servo-k8s-multijob check`, the pure part: from what was read off the cluster (ClusterFacts, plain
// data) to ordered categories of named checks, each passed, a warning or failed, with one line of
// what to do, in the `linkerd check` form. gather.ts reads the facts; report.ts prints them.
import { parseAppIdPath } from "../jobs/app-id.js";
import { DEFAULT_APP_ID } from "../edges/config.js";
import { selectJob } from "../jobs/job.js";
import { isRecord, text, type Pod } from "../jobs/pod.js";
import { CLAIM_ANNOTATION, claimState } from "../measure/claim.js";
import { deletionRequestedAt, HOLD_FINALIZER, isHeld } from "../measure/hold.js";
import { commandLine, shellQuoted } from "../deploy/print.js";
import { printableLine } from "../edges/printable.js";
import { FUNCTION, manifests, OPENFAAS_FUNCTIONS, SOURCE, SOURCE_ACCOUNT, WEBHOOK, type ManifestOptions, type Release } from "../deploy/manifests.js";

export type Status = "ok" | "warning" | "failed";

export interface CheckResult {
  readonly name: string;
  readonly status: Status;
  /** What to do about it (warnings and failures). */
  readonly hint?: string;
}

export interface Category {
  readonly name: string;
  readonly checks: readonly CheckResult[];
}

export interface CheckOptions {
  /** The flags given, as `manifests` reads them: what the installation is (or will be) and how to make it. */
  readonly install: ManifestOptions & Release;
  /** --pre: only what must hold before installing. */
  readonly pre?: boolean;
  /** This command's version, compared with the installed one's. */
  readonly cliVersion?: string;
  /** Now, in ms; a finished job unreported for longer than `sweepIntervalMs` is a warning. */
  readonly now: number;
  readonly sweepIntervalMs?: number;
}

/** An object read from the API server: the object, absent (404), or why it could not be read. */
export type Read = { readonly found: Record<string, unknown> } | { readonly absent: true } | { readonly error: string };

export interface AccessQuestion {
  readonly subject: string;
  readonly namespace: string;
  readonly verb: string;
  readonly resource: string;
  readonly group: string;
}

/** Whether this user may create one kind of object `manifests` writes, where it writes it ("" for the cluster). */
export interface InstallQuestion {
  readonly verb: "create";
  readonly group: string;
  readonly resource: string;
  readonly namespace: string;
}

export interface ClusterFacts {
  /** The API server's version, or why it cannot be reached. */
  readonly server: { readonly version: string } | { readonly error: string };
  /** "group/version" of every API the server serves (for Knative's and cert-manager's), or why they could not be listed. */
  readonly apis: readonly string[] | { readonly error: string };
  /** Each question asked of SubjectAccessReview, with its answer (or why it could not be asked). */
  readonly access: ReadonlyArray<AccessQuestion & { readonly allowed: boolean | string }>;
  readonly service: Read;
  readonly pingSource: Read;
  readonly sources: Readonly<Record<string, Read>>;
  /** The Secret the function reads its token from, if its environment names one: only its keys are kept. */
  readonly tokenSecret?: { readonly name: string; readonly key: string; readonly keys: readonly string[] | undefined; readonly error?: string };
  readonly webhook?: {
    readonly configuration: Read;
    readonly deployment: Read;
    /** What the serving certificate says (from the cert-manager Secret). */
    readonly certificate?: { readonly verifiesWithCaBundle: boolean; readonly dnsNames: readonly string[]; readonly notAfter: number } | { readonly error: string };
  };
  /** The function's OPTUNE_APP_ID, as its Service's environment says (else the default): which pods are jobs. */
  readonly appIdSpec?: string;
  /** Where the function sends (its Service's OPTUNE_URL, or the default), and what came of reaching it. */
  readonly optune?: {
    readonly url: string;
    readonly resolves: true | string;
    /** An HTTP status from the URL's origin, or why none came. */
    readonly answers?: number | string;
    /** With --optune: Optune's answer to a HELLO (visible in Optune). */
    readonly hello?: true | string;
    /** The function's own OPTUNE_URL, when it differs from `url` (this environment's). */
    readonly functionUrl?: string;
  };
  /** With --pre: whether this user may create each kind of object `manifests` writes, and (OpenFaaS) its gateway's Service. */
  readonly prerequisites?: {
    readonly access: ReadonlyArray<InstallQuestion & { readonly allowed: boolean | string }>;
    readonly openfaasGateway?: Read;
  };
  /** Pods in the watched namespaces, or why they could not be listed. */
  readonly pods: Readonly<Record<string, readonly Record<string, unknown>[] | { readonly error: string }>>;
}

export const SWEEP_INTERVAL_MS = 5 * 60_000;
const ok = (name: string): CheckResult => ({ name, status: "ok" });
const warn = (name: string, hint: string): CheckResult => ({ name, status: "warning", hint });
const fail = (name: string, hint: string): CheckResult => ({ name, status: "failed", hint });

export function runChecks(facts: ClusterFacts, options: CheckOptions): Category[] {
  const categories: Category[] = [{ name: "kubernetes-api", checks: apiChecks(facts, options) }];
  if ("error" in facts.server) return categories; // nothing else can be known
  if (options.pre === true) return [...categories, { name: "pre-install", checks: preInstallChecks(facts, options) }];
  categories.push({ name: "permissions", checks: permissionChecks(facts, options) });
  categories.push({ name: "event delivery", checks: deliveryChecks(facts, options) });
  if (options.install.webhook && facts.webhook !== undefined) categories.push({ name: "admission webhook", checks: webhookChecks(facts.webhook, options) });
  if (options.cliVersion !== undefined) categories.push({ name: "version", checks: [versionCheck(facts, options, options.cliVersion)] });
  categories.push({ name: "recent work", checks: recentWork(facts, options) });
  if (facts.optune !== undefined) categories.push({ name: "optune", checks: optuneChecks(facts.optune) });
  return categories;
}

function optuneChecks(optune: NonNullable<ClusterFacts["optune"]>): CheckResult[] {
  const host = (() => {
    try {
      return new URL(optune.url.replaceAll("{acct}", "a").replaceAll("{app_id}", "a")).host;
    } catch {
      return optune.url;
    }
  })();
  const checks = [optune.resolves === true ? ok(`${host} resolves`) : fail(`${host} resolves`, `${optune.resolves}; from here, at least (the function's pod may see other DNS)`)];
  if (optune.answers !== undefined) {
    checks.push(typeof optune.answers === "number" ? ok(`${host} answers (HTTP ${optune.answers})`) : fail(`${host} answers`, `${optune.answers}; check OPTUNE_URL and the egress of the function's namespace`));
  }
  if (optune.functionUrl !== undefined) checks.push(warn(`the function sends to the same OPTUNE_URL as this environment`, `it sends to ${optune.functionUrl}; these checks used ${optune.url}`));
  if (optune.hello !== undefined) {
    checks.push(optune.hello === true ? ok("Optune accepted a HELLO with your account and token") : fail("Optune accepted a HELLO with your account and token", `${optune.hello}; check OPTUNE_ACCOUNT and OPTUNE_AUTH_TOKEN`));
  }
  return checks;
}

/** The Kubernetes minors this release is tested on (the real-cluster tier runs both ends). */
export const TESTED_KUBERNETES = { oldest: "1.28", newest: "1.37" } as const;

/** The APIs outside Kubernetes itself that an installation with these flags uses, by group, with where to get them. */
const PROVIDERS: Readonly<Record<string, readonly [string, string]>> = {
  "serving.knative.dev": ["Knative Serving's API", "install Knative Serving (https://knative.dev/docs/install/)"],
  "sources.knative.dev": ["Knative Eventing's sources API", "install Knative Eventing (https://knative.dev/docs/install/)"],
  "eventing.knative.dev": ["Knative Eventing's API", "install Knative Eventing (https://knative.dev/docs/install/)"],
  "cert-manager.io": ["cert-manager's API", "install cert-manager (https://cert-manager.io/docs/installation/)"],
  "monitoring.coreos.com": ["prometheus-operator's API", "install prometheus-operator (for example with kube-prometheus-stack)"],
};

function apiChecks(facts: ClusterFacts, options: CheckOptions): CheckResult[] {
  if ("error" in facts.server) return [fail("can reach the Kubernetes API", `${facts.server.error}; check your kubeconfig (KUBECONFIG, the current context)`)];
  const checks = [ok(`can reach the Kubernetes API (${facts.server.version})`), kubernetesVersionCheck(facts.server.version)];
  if (!Array.isArray(facts.apis)) return [...checks, fail("can list the API server's APIs", `${(facts.apis as { error: string }).error}; without the list, which of Knative's and cert-manager's APIs are installed cannot be known`)];
  const served = facts.apis as readonly string[];
  // Which APIs the documents need does not depend on the image, which --pre may not be given yet.
  const needed = [...new Set(manifests({ ...options.install, image: options.install.image ?? "image-not-given" }).map(({ manifest }) => manifest.apiVersion))].filter((api) => PROVIDERS[api.split("/")[0]!] !== undefined);
  for (const api of needed) {
    const [what, hint] = PROVIDERS[api.split("/")[0]!]!;
    checks.push(served.includes(api) ? ok(`${what} (${api}) is installed`) : fail(`${what} (${api}) is installed`, hint));
  }
  return checks;
}

/** Within the tested minors: passed; older: failed (`manifests` writes fields older servers refuse); newer: a warning. */
function kubernetesVersionCheck(gitVersion: string): CheckResult {
  const range = `v${TESTED_KUBERNETES.oldest} to v${TESTED_KUBERNETES.newest}`;
  const name = `its version is within the tested range (${range})`;
  const match = /^v?(\d+)\.(\d+)/.exec(gitVersion);
  if (match === null) return warn(name, `cannot read a version from ${JSON.stringify(gitVersion)}`);
  const minor = (version: string) => Number(version.split(".")[0]) * 1000 + Number(version.split(".")[1]);
  const at = Number(match[1]) * 1000 + Number(match[2]);
  if (at < minor(TESTED_KUBERNETES.oldest)) return fail(name, `it is v${match[1]}.${match[2]}: upgrade Kubernetes to v${TESTED_KUBERNETES.oldest} or newer`);
  if (at > minor(TESTED_KUBERNETES.newest)) return warn(name, `it is v${match[1]}.${match[2]}, newer than tested: it probably works; report what does not`);
  return ok(name);
}

/** --pre: may you create what `manifests` writes, and (OpenFaaS) is its gateway there. */
function preInstallChecks(facts: ClusterFacts, options: CheckOptions): CheckResult[] {
  const checks: CheckResult[] = [];
  const prerequisites = facts.prerequisites ?? { access: [] };
  for (const answer of prerequisites.access) {
    const where = answer.namespace === "" ? "the cluster" : answer.namespace;
    const name = `you may create ${answer.resource}${answer.group === "" ? "" : `.${answer.group}`} in ${where}`;
    if (typeof answer.allowed === "string") checks.push(warn(name, `cannot ask the API server: ${answer.allowed} (check needs create selfsubjectaccessreviews, which every user has)`));
    else checks.push(answer.allowed ? ok(name) : fail(name, `ask your cluster's administrator to apply the output of \`${commandLine(options.install)}\`, or to grant you create on ${answer.resource}`));
  }
  const gateway = prerequisites.openfaasGateway;
  if (gateway !== undefined) {
    const name = "OpenFaaS's gateway (the Service openfaas/gateway) exists";
    checks.push("found" in gateway ? ok(name) : "absent" in gateway ? fail(name, "install OpenFaaS (https://docs.openfaas.com/deployment/kubernetes/)") : warn(name, `cannot read it: ${gateway.error}`));
  }
  return checks;
}

function permissionChecks(facts: ClusterFacts, options: CheckOptions): CheckResult[] {
  const checks: CheckResult[] = [];
  const bySubject = new Map<string, Array<AccessQuestion & { readonly allowed: boolean | string }>>();
  for (const answer of facts.access) {
    const key = `${answer.subject} ${answer.namespace} ${answer.resource}`;
    bySubject.set(key, [...(bySubject.get(key) ?? []), answer]);
  }
  for (const answers of bySubject.values()) {
    const { subject, namespace } = answers[0]!;
    const who = subject.split(":").at(-1)!;
    const name = `${who} may ${answers.map((answer) => answer.verb).join(", ")} ${answers[0]!.resource} in ${namespace || "the cluster"}`;
    const unknown = answers.find((answer) => typeof answer.allowed === "string");
    if (unknown !== undefined) {
      checks.push(warn(name, `cannot ask the API server: ${String(unknown.allowed)} (check needs create subjectaccessreviews)`));
      continue;
    }
    const missing = answers.filter((answer) => answer.allowed === false);
    checks.push(
      missing.length === 0
        ? ok(name)
        : fail(name, `missing rule in ${namespace || "a ClusterRole"} for ${subject}: apiGroups [${JSON.stringify(missing[0]!.group)}], resources [${missing.map((answer) => answer.resource)[0]}], verbs [${missing.map((answer) => answer.verb).join(", ")}]; \`${commandLine(options.install)}\` writes it`),
    );
  }
  return checks;
}

function deliveryChecks(facts: ClusterFacts, options: CheckOptions): CheckResult[] {
  const checks: CheckResult[] = [];
  if (options.install.target === "knative") {
    checks.push(readyCheck(`the Knative Service ${options.install.namespace}/${FUNCTION} is Ready`, facts.service, ["Ready"], `kubectl -n ${options.install.namespace} describe ksvc ${FUNCTION}`, options));
    checks.push(readyCheck(`the PingSource ${options.install.namespace}/servo-sweep (the sweep) is Ready`, facts.pingSource, ["Ready"], "without it, jobs whose events were lost are never reported", options));
  }
  for (const namespace of options.install.watch) {
    const source = facts.sources[namespace] ?? { absent: true };
    const name = `the ApiServerSource ${namespace}/${SOURCE}`;
    if ("absent" in source) {
      checks.push(fail(`${name} exists`, applyHint(options)));
      continue;
    }
    if ("error" in source) {
      checks.push(warn(`${name} exists`, `cannot read it: ${source.error}`));
      continue;
    }
    const spec = isRecord(source.found.spec) ? source.found.spec : {};
    checks.push(spec.mode === "Resource" ? ok(`${name} sends whole Pods (mode: Resource)`) : warn(`${name} sends whole Pods (mode: Resource)`, `its mode is ${text(spec.mode) ?? "Reference (the default)"}: each event costs a GET; set spec.mode: Resource`));
    checks.push(readyCheck(`${name} is Ready (SufficientPermissions, SinkProvided)`, source, ["Ready", "SufficientPermissions", "SinkProvided"], `kubectl -n ${namespace} describe apiserversource ${SOURCE}`, options));
    const sink = isRecord(spec.sink) ? spec.sink : {};
    const ref = isRecord(sink.ref) ? sink.ref : undefined;
    const expected = options.install.target === "knative" ? ref?.kind === "Service" && ref.name === FUNCTION && (ref.namespace ?? namespace) === options.install.namespace : text(sink.uri)?.endsWith(`/function/${FUNCTION}`) === true;
    const viaBroker = ref?.kind === "Broker";
    checks.push(expected || viaBroker ? ok(`${name} sends to the function${viaBroker ? " (through a Broker)" : ""}`) : fail(`${name} sends to the function`, `its sink is ${JSON.stringify(sink)}; it must be the function in ${options.install.namespace}`));
  }
  const secret = facts.tokenSecret;
  if (secret !== undefined) {
    const name = `the Secret ${options.install.namespace}/${secret.name} holds the Optune token (key ${secret.key})`;
    if (secret.error !== undefined) checks.push(warn(name, `cannot read it: ${secret.error}`));
    else if (secret.keys === undefined) checks.push(fail(name, `create it: kubectl -n ${options.install.namespace} create secret generic ${secret.name} --from-literal=${secret.key}="$OPTUNE_AUTH_TOKEN"`));
    else checks.push(secret.keys.includes(secret.key) ? ok(name) : fail(name, `it has no key ${secret.key} (only ${secret.keys.join(", ") || "none"})`));
  }
  return checks;
}

function webhookChecks(webhook: NonNullable<ClusterFacts["webhook"]>, options: CheckOptions): CheckResult[] {
  const checks: CheckResult[] = [];
  const configuration = webhook.configuration;
  if (!("found" in configuration)) {
    checks.push(fail(`the MutatingWebhookConfiguration ${FUNCTION} exists`, "error" in configuration ? configuration.error : applyHint(options)));
  } else {
    const hooks = Array.isArray(configuration.found.webhooks) ? (configuration.found.webhooks as unknown[]) : [];
    const policies = hooks.map((hook) => (isRecord(hook) ? hook.failurePolicy : undefined));
    checks.push(policies.length > 0 && policies.every((policy) => policy === "Ignore") ? ok("it never blocks a pod (failurePolicy: Ignore)") : fail("it never blocks a pod (failurePolicy: Ignore)", `failurePolicy is ${JSON.stringify(policies)}: set Ignore, or pods cannot be created while the webhook is down`));
  }
  const certificate = webhook.certificate;
  const host = `${WEBHOOK}.${options.install.namespace}.svc`;
  if (certificate === undefined || "error" in certificate) {
    checks.push(fail("its caBundle verifies the serving certificate", certificate === undefined ? "no certificate to check" : certificate.error));
  } else {
    checks.push(certificate.verifiesWithCaBundle ? ok("its caBundle verifies the serving certificate") : fail("its caBundle verifies the serving certificate", "the caBundle was never injected or is stale: is cert-manager's cainjector running? (annotation cert-manager.io/inject-ca-from)"));
    checks.push(certificate.dnsNames.includes(host) ? ok(`the certificate is for ${host}`) : fail(`the certificate is for ${host}`, `it is for ${certificate.dnsNames.join(", ") || "no DNS name"}`));
    const days = Math.floor((certificate.notAfter - options.now) / 86_400_000);
    checks.push(days > 30 ? ok(`the certificate is valid for ${days} more days`) : days >= 0 ? warn(`the certificate is valid for ${days} more days`, "cert-manager renews it; check the Certificate's status if it does not") : fail("the certificate is valid", "it has expired: the API server cannot call the webhook"));
  }
  const deployment = webhook.deployment;
  if ("found" in deployment) {
    const status = isRecord(deployment.found.status) ? deployment.found.status : {};
    const spec = isRecord(deployment.found.spec) ? deployment.found.spec : {};
    const available = Number(status.availableReplicas ?? 0);
    const wanted = Number(spec.replicas ?? 1);
    checks.push(available >= wanted ? ok(`its Deployment has ${available} of ${wanted} replicas available`) : available > 0 ? warn(`its Deployment has ${available} of ${wanted} replicas available`, `kubectl -n ${options.install.namespace} describe deployment ${WEBHOOK}`) : fail(`its Deployment has replicas available`, `none of ${wanted}: pods are admitted untuned; kubectl -n ${options.install.namespace} describe deployment ${WEBHOOK}`));
  } else {
    checks.push(fail(`its Deployment ${options.install.namespace}/${WEBHOOK} exists`, "error" in deployment ? deployment.error : applyHint(options)));
  }
  return checks;
}

function recentWork(facts: ClusterFacts, options: CheckOptions): CheckResult[] {
  const checks: CheckResult[] = [];
  const interval = options.sweepIntervalMs ?? SWEEP_INTERVAL_MS;
  const spec = facts.appIdSpec ?? DEFAULT_APP_ID;
  let appIdPath;
  try {
    appIdPath = parseAppIdPath(spec);
  } catch {
    appIdPath = parseAppIdPath(DEFAULT_APP_ID); // the function itself would refuse to start with it
  }
  const criteria = { namespaces: new Set(options.install.watch), appIdPath, appIdSpec: spec };
  const isJob = (pod: Record<string, unknown>) => selectJob(pod as Pod, criteria).job;
  for (const namespace of options.install.watch) {
    const pods = facts.pods[namespace];
    if (pods === undefined) continue;
    if (!Array.isArray(pods)) {
      checks.push(warn(`finished jobs in ${namespace}`, `cannot list pods: ${(pods as { error: string }).error}`));
      continue;
    }
    const finished = pods.filter(isJob).map((pod) => ({ pod, at: finishedAt(pod) })).filter(({ at }) => at !== undefined && options.now - at! < 3600_000);
    const reported = finished.filter(({ pod }) => claimOf(pod) === "sent");
    const late = finished.filter(({ pod, at }) => claimOf(pod) !== "sent" && options.now - at! > interval);
    const name = `finished jobs in ${namespace} in the last hour: ${reported.length} of ${finished.length} reported`;
    if (late.length === 0) checks.push(ok(name));
    else {
      const names = late.slice(0, 3).map(({ pod }) => text(isRecord(pod.metadata) ? pod.metadata.name : undefined) ?? "?");
      checks.push(warn(name, `unreported for more than a sweep interval: ${names.join(", ")}${late.length > 3 ? ` and ${late.length - 3} more` : ""}; see the function's log, or run \`${sweepCommand(options)}\` (with OPTUNE_AUTH_TOKEN set)`));
    }
    checks.push(heldPods(namespace, pods as Pod[], options.now, interval));
  }
  if (options.install.target === "openfaas") checks.push(ok(`the function runs in ${OPENFAAS_FUNCTIONS} (OpenFaaS): claims are not written there (memory mode)`));
  return checks;
}

/** Job pods being deleted that our finalizer holds until reported: how many, the oldest, and why it waits. */
function heldPods(namespace: string, pods: readonly Pod[], now: number, interval: number): CheckResult {
  const held = pods.filter((pod) => isHeld(pod) && deletionRequestedAt(pod) !== undefined).sort((a, b) => deletionRequestedAt(a)! - deletionRequestedAt(b)!);
  if (held.length === 0) return ok(`no deleted job pod in ${namespace} is held for its MEASUREMENT`);
  const oldest = held[0]!;
  const minutes = Math.floor((now - deletionRequestedAt(oldest)!) / 60_000);
  const state = claimState(oldest);
  const why =
    state.kind === "released" ? `${state.failures} deliveries to Optune failed, the next is due at ${new Date(state.retryAt).toISOString()}`
    : state.kind === "sending" ? `being reported by ${state.instance}`
    : state.kind === "none" ? "not claimed yet: is the function running, and does its sweep run?"
    : state.kind === "sent" ? "reported: the function lets it go at its next event or sweep"
    : "its claim annotation was not written by the function";
  const name = `${held.length} deleted job pod${held.length === 1 ? "" : "s"} in ${namespace} held for their MEASUREMENT (the finalizer ${HOLD_FINALIZER}), the oldest for ${minutes} min`;
  const hint = `${text(oldest.metadata?.name) ?? "?"}: ${why}; held pods are let go after OPTUNE_HOLD (24 h), or now with \`servo-k8s-multijob release --namespace ${namespace}\``;
  return now - deletionRequestedAt(oldest)! > interval ? warn(name, hint) : ok(`${name} (${why})`);
}

/** The sweep, run here, over what the installation watches (its configuration comes from the environment). */
function sweepCommand(options: CheckOptions): string {
  const { watch, account, appId } = options.install;
  const env = [`POD_NAMESPACES=${shellQuoted(watch.join(","))}`, ...(account === undefined ? [] : [`OPTUNE_ACCOUNT=${shellQuoted(account)}`]), ...(appId === DEFAULT_APP_ID ? [] : [`OPTUNE_APP_ID=${shellQuoted(appId)}`])];
  return `${env.join(" ")} servo-k8s-multijob sweep`;
}

/** What to do about an object that is not there: the install command, with every flag given. */
function applyHint(options: CheckOptions): string {
  return `apply the output of \`${commandLine(options.install)}\``;
}

function readyCheck(name: string, read: Read, conditions: readonly string[], inspect: string, options: CheckOptions): CheckResult {
  if ("absent" in read) return fail(name, `it does not exist: ${applyHint(options)}`);
  if ("error" in read) return warn(name, `cannot read it: ${read.error}`);
  const status = isRecord(read.found.status) ? read.found.status : {};
  const all = Array.isArray(status.conditions) ? status.conditions.filter(isRecord) : [];
  for (const type of conditions) {
    const condition = all.find((item) => item.type === type);
    if (condition?.status !== "True") {
      const why = condition === undefined ? "not reported yet" : printableLine([text(condition.reason), text(condition.message)].filter((part) => part !== undefined).join(": "), 160);
      return fail(name, `${type} is ${text(condition?.status) ?? "unknown"} (${why}); ${inspect}`);
    }
  }
  return ok(name);
}

/** The app.kubernetes.io/version label of the first installed object found (the Knative Service, the webhook's Deployment, a source) against this command's. */
function versionCheck(facts: ClusterFacts, options: CheckOptions, cliVersion: string): CheckResult {
  const candidates: Array<[string, Read | undefined]> = [
    [`the Knative Service ${options.install.namespace}/${FUNCTION}`, facts.service],
    [`the Deployment ${options.install.namespace}/${WEBHOOK}`, facts.webhook?.deployment],
    ...options.install.watch.map((namespace): [string, Read | undefined] => [`the ApiServerSource ${namespace}/${SOURCE}`, facts.sources[namespace]]),
  ];
  const found = candidates.find((candidate): candidate is [string, { found: Record<string, unknown> }] => candidate[1] !== undefined && "found" in candidate[1]);
  const name = `the installed version is this command's (${cliVersion})`;
  if (found === undefined) return warn(name, "no installed object to read a version from");
  const [what, { found: object }] = found;
  const labels = isRecord(object.metadata) && isRecord(object.metadata.labels) ? object.metadata.labels : {};
  const installed = text(labels["app.kubernetes.io/version"]);
  if (installed === undefined) return warn(name, `${what} has no label app.kubernetes.io/version (installed by a release before it was written): cannot compare; to label it, apply the output of \`${commandLine(options.install)}\``);
  if (installed === cliVersion) return ok(`the installed version is this command's (${cliVersion})`);
  return warn(name, `${what} says ${installed}: to upgrade, apply the output of \`${commandLine(options.install)}\`; or use the command of version ${installed}`);
}

function finishedAt(pod: Record<string, unknown>): number | undefined {
  const status = isRecord(pod.status) ? pod.status : {};
  if (status.phase !== "Succeeded" && status.phase !== "Failed") return undefined;
  let latest: number | undefined;
  for (const container of Array.isArray(status.containerStatuses) ? status.containerStatuses : []) {
    const terminated = isRecord(container) && isRecord(container.state) && isRecord(container.state.terminated) ? container.state.terminated : undefined;
    const at = Date.parse(text(terminated?.finishedAt) ?? "");
    if (Number.isFinite(at)) latest = Math.max(latest ?? 0, at);
  }
  return latest;
}

function claimOf(pod: Record<string, unknown>): string | undefined {
  const annotations = isRecord(pod.metadata) && isRecord(pod.metadata.annotations) ? pod.metadata.annotations : {};
  const value = text(annotations[CLAIM_ANNOTATION]);
  if (value === undefined) return undefined;
  try {
    return text((JSON.parse(value) as { state?: unknown }).state);
  } catch {
    return undefined;
  }
}

/** The questions `check` asks SubjectAccessReview: exactly the rules `manifests` writes. */
export function accessQuestions(options: ManifestOptions): AccessQuestion[] {
  const questions: AccessQuestion[] = [];
  const sa = (namespace: string, name: string) => `system:serviceaccount:${namespace}:${name}`;
  for (const namespace of options.watch) {
    if (options.target === "knative") for (const verb of ["get", "list", "patch"]) questions.push({ subject: sa(options.namespace, FUNCTION), namespace, verb, resource: "pods", group: "" });
    for (const verb of ["get", "list", "watch"]) questions.push({ subject: sa(namespace, SOURCE_ACCOUNT), namespace, verb, resource: "pods", group: "" });
    if (options.webhook) for (const resource of ["limitranges", "resourcequotas"]) for (const verb of ["list", "watch"]) questions.push({ subject: sa(options.namespace, WEBHOOK), namespace, verb, resource, group: "" });
  }
  return questions;
}

/** The questions `check --pre` asks SelfSubjectAccessReview: create, for each kind of object `manifests` writes with these flags, where it writes it. */
export function installQuestions(options: ManifestOptions & Release): InstallQuestion[] {
  const questions = new Map<string, InstallQuestion>();
  for (const { manifest } of manifests({ ...options, image: options.image ?? "image-not-given" })) {
    const group = manifest.apiVersion.includes("/") ? manifest.apiVersion.split("/")[0]! : "";
    const kind = manifest.kind.toLowerCase();
    const resource = kind.endsWith("y") ? `${kind.slice(0, -1)}ies` : `${kind}s`;
    const question = { verb: "create" as const, group, resource, namespace: manifest.metadata.namespace ?? "" };
    questions.set(JSON.stringify(question), question);
  }
  return [...questions.values()];
}

/** Whether any check failed: the exit code is 1 then. */
export function failed(categories: readonly Category[]): boolean {
  return categories.some((category) => category.checks.some((check) => check.status === "failed"));
}
