// `servo-k8s-multijob check`, the pure part: from what was read off the cluster (ClusterFacts, plain
// data) to ordered categories of named checks, each passed, a warning or failed, with one line of
// what to do, in the `linkerd check` form. gather.ts reads the facts; report.ts prints them.
import { parseAppIdPath } from "../jobs/app-id.js";
import { DEFAULT_APP_ID } from "../edges/config.js";
import { selectJob } from "../jobs/job.js";
import { isRecord, text, type Pod } from "../jobs/pod.js";
import { CLAIM_ANNOTATION } from "../measure/claim.js";
import { FUNCTION, OPENFAAS_FUNCTIONS, SOURCE, SOURCE_ACCOUNT, WEBHOOK, type Target } from "../deploy/manifests.js";

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
  readonly namespace: string;
  readonly watch: readonly string[];
  readonly target: Target;
  readonly webhook: boolean;
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

export interface ClusterFacts {
  /** The API server's version, or why it cannot be reached. */
  readonly server: { readonly version: string } | { readonly error: string };
  /** "group/version" of every API the server serves (for Knative's and OpenFaaS's). */
  readonly apis: readonly string[];
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
  categories.push({ name: "permissions", checks: permissionChecks(facts) });
  categories.push({ name: "event delivery", checks: deliveryChecks(facts, options) });
  if (options.webhook && facts.webhook !== undefined) categories.push({ name: "admission webhook", checks: webhookChecks(facts.webhook, options) });
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
  if (optune.hello !== undefined) {
    checks.push(optune.hello === true ? ok("Optune accepted a HELLO with your account and token") : fail("Optune accepted a HELLO with your account and token", `${optune.hello}; check OPTUNE_ACCOUNT and OPTUNE_AUTH_TOKEN`));
  }
  return checks;
}

function apiChecks(facts: ClusterFacts, options: CheckOptions): CheckResult[] {
  if ("error" in facts.server) return [fail("can reach the Kubernetes API", `${facts.server.error}; check your kubeconfig (KUBECONFIG, the current context)`)];
  const checks = [ok(`can reach the Kubernetes API (${facts.server.version})`)];
  const needs: Array<[string, string]> = [["sources.knative.dev/v1", "Knative Eventing's sources API"]];
  if (options.target === "knative") needs.unshift(["serving.knative.dev/v1", "Knative Serving's API"]);
  for (const [api, what] of needs) {
    checks.push(facts.apis.includes(api) ? ok(`${what} (${api}) is installed`) : fail(`${what} (${api}) is installed`, `install Knative ${api.startsWith("serving") ? "Serving" : "Eventing"} (https://knative.dev/docs/install/)`));
  }
  return checks;
}

function permissionChecks(facts: ClusterFacts): CheckResult[] {
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
        : fail(name, `missing rule in ${namespace || "a ClusterRole"} for ${subject}: apiGroups [${JSON.stringify(missing[0]!.group)}], resources [${missing.map((answer) => answer.resource)[0]}], verbs [${missing.map((answer) => answer.verb).join(", ")}]; \`servo-k8s-multijob manifests\` writes it`),
    );
  }
  return checks;
}

function deliveryChecks(facts: ClusterFacts, options: CheckOptions): CheckResult[] {
  const checks: CheckResult[] = [];
  if (options.target === "knative") {
    checks.push(readyCheck(`the Knative Service ${options.namespace}/${FUNCTION} is Ready`, facts.service, ["Ready"], `kubectl -n ${options.namespace} describe ksvc ${FUNCTION}`));
    checks.push(present(`the PingSource ${options.namespace}/servo-sweep (the sweep) is Ready`, facts.pingSource, ["Ready"]));
  }
  for (const namespace of options.watch) {
    const source = facts.sources[namespace] ?? { absent: true };
    const name = `the ApiServerSource ${namespace}/${SOURCE}`;
    if ("absent" in source) {
      checks.push(fail(`${name} exists`, `apply the output of \`servo-k8s-multijob manifests --watch ${options.watch.join(",")}\``));
      continue;
    }
    if ("error" in source) {
      checks.push(warn(`${name} exists`, `cannot read it: ${source.error}`));
      continue;
    }
    const spec = isRecord(source.found.spec) ? source.found.spec : {};
    checks.push(spec.mode === "Resource" ? ok(`${name} sends whole Pods (mode: Resource)`) : warn(`${name} sends whole Pods (mode: Resource)`, `its mode is ${text(spec.mode) ?? "Reference (the default)"}: each event costs a GET; set spec.mode: Resource`));
    checks.push(readyCheck(`${name} is Ready (SufficientPermissions, SinkProvided)`, source, ["Ready", "SufficientPermissions", "SinkProvided"], `kubectl -n ${namespace} describe apiserversource ${SOURCE}`));
    const sink = isRecord(spec.sink) ? spec.sink : {};
    const ref = isRecord(sink.ref) ? sink.ref : undefined;
    const expected = options.target === "knative" ? ref?.kind === "Service" && ref.name === FUNCTION && (ref.namespace ?? namespace) === options.namespace : text(sink.uri)?.endsWith(`/function/${FUNCTION}`) === true;
    const viaBroker = ref?.kind === "Broker";
    checks.push(expected || viaBroker ? ok(`${name} sends to the function${viaBroker ? " (through a Broker)" : ""}`) : fail(`${name} sends to the function`, `its sink is ${JSON.stringify(sink)}; it must be the function in ${options.namespace}`));
  }
  const secret = facts.tokenSecret;
  if (secret !== undefined) {
    const name = `the Secret ${options.namespace}/${secret.name} holds the Optune token (key ${secret.key})`;
    if (secret.error !== undefined) checks.push(warn(name, `cannot read it: ${secret.error}`));
    else if (secret.keys === undefined) checks.push(fail(name, `create it: kubectl -n ${options.namespace} create secret generic ${secret.name} --from-literal=${secret.key}="$OPTUNE_AUTH_TOKEN"`));
    else checks.push(secret.keys.includes(secret.key) ? ok(name) : fail(name, `it has no key ${secret.key} (only ${secret.keys.join(", ") || "none"})`));
  }
  return checks;
}

function webhookChecks(webhook: NonNullable<ClusterFacts["webhook"]>, options: CheckOptions): CheckResult[] {
  const checks: CheckResult[] = [];
  const configuration = webhook.configuration;
  if (!("found" in configuration)) {
    checks.push(fail(`the MutatingWebhookConfiguration ${FUNCTION} exists`, "error" in configuration ? configuration.error : "apply the output of `servo-k8s-multijob manifests --webhook`"));
  } else {
    const hooks = Array.isArray(configuration.found.webhooks) ? (configuration.found.webhooks as unknown[]) : [];
    const policies = hooks.map((hook) => (isRecord(hook) ? hook.failurePolicy : undefined));
    checks.push(policies.length > 0 && policies.every((policy) => policy === "Ignore") ? ok("it never blocks a pod (failurePolicy: Ignore)") : fail("it never blocks a pod (failurePolicy: Ignore)", `failurePolicy is ${JSON.stringify(policies)}: set Ignore, or pods cannot be created while the webhook is down`));
  }
  const certificate = webhook.certificate;
  const host = `${WEBHOOK}.${options.namespace}.svc`;
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
    checks.push(available >= wanted ? ok(`its Deployment has ${available} of ${wanted} replicas available`) : available > 0 ? warn(`its Deployment has ${available} of ${wanted} replicas available`, `kubectl -n ${options.namespace} describe deployment ${WEBHOOK}`) : fail(`its Deployment has replicas available`, `none of ${wanted}: pods are admitted untuned; kubectl -n ${options.namespace} describe deployment ${WEBHOOK}`));
  } else {
    checks.push(fail(`its Deployment ${options.namespace}/${WEBHOOK} exists`, "error" in deployment ? deployment.error : "apply the output of `servo-k8s-multijob manifests --webhook`"));
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
  const criteria = { namespaces: new Set(options.watch), appIdPath, appIdSpec: spec };
  const isJob = (pod: Record<string, unknown>) => selectJob(pod as Pod, criteria).job;
  for (const namespace of options.watch) {
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
      checks.push(warn(name, `unreported for more than a sweep interval: ${names.join(", ")}${late.length > 3 ? ` and ${late.length - 3} more` : ""}; see the function's log, or run \`servo-k8s-multijob sweep\``));
    }
  }
  if (options.target === "openfaas") checks.push(ok(`the function runs in ${OPENFAAS_FUNCTIONS} (OpenFaaS): claims are not written there (memory mode)`));
  return checks;
}

function readyCheck(name: string, read: Read, conditions: readonly string[], inspect: string): CheckResult {
  if ("absent" in read) return fail(name, "it does not exist: apply the output of `servo-k8s-multijob manifests`");
  if ("error" in read) return warn(name, `cannot read it: ${read.error}`);
  const status = isRecord(read.found.status) ? read.found.status : {};
  const all = Array.isArray(status.conditions) ? status.conditions.filter(isRecord) : [];
  for (const type of conditions) {
    const condition = all.find((item) => item.type === type);
    if (condition?.status !== "True") {
      const why = condition === undefined ? "not reported yet" : [text(condition.reason), text(condition.message)].filter((part) => part !== undefined).join(": ").slice(0, 200);
      return fail(name, `${type} is ${text(condition?.status) ?? "unknown"} (${why}); ${inspect}`);
    }
  }
  return ok(name);
}

function present(name: string, read: Read, conditions: readonly string[]): CheckResult {
  return readyCheck(name, read, conditions, "without it, jobs whose events were lost are never reported");
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
export function accessQuestions(options: CheckOptions): AccessQuestion[] {
  const questions: AccessQuestion[] = [];
  const sa = (namespace: string, name: string) => `system:serviceaccount:${namespace}:${name}`;
  for (const namespace of options.watch) {
    if (options.target === "knative") for (const verb of ["get", "list", "patch"]) questions.push({ subject: sa(options.namespace, FUNCTION), namespace, verb, resource: "pods", group: "" });
    for (const verb of ["get", "list", "watch"]) questions.push({ subject: sa(namespace, SOURCE_ACCOUNT), namespace, verb, resource: "pods", group: "" });
    if (options.webhook) questions.push({ subject: sa(options.namespace, WEBHOOK), namespace, verb: "list", resource: "limitranges", group: "" }, { subject: sa(options.namespace, WEBHOOK), namespace, verb: "list", resource: "resourcequotas", group: "" });
  }
  return questions;
}

/** Whether any check failed: the exit code is 1 then. */
export function failed(categories: readonly Category[]): boolean {
  return categories.some((category) => category.checks.some((check) => check.status === "failed"));
}
