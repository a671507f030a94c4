// `servo-k8s-multijob manifests`: everything a deployment needs, from options that mirror the
// configuration, as Kubernetes objects (pure: options in, documents out; the CLI prints them as
// YAML for `kubectl apply -f -`). Per watched namespace: the event source with its sink in the
// function's namespace, and the Roles and RoleBindings for the function and for the source, bound
// to the right subjects. The function never runs in a namespace it watches.
import { DEFAULT_APP_ID } from "../edges/config.js";
import { rulesFile } from "./monitoring.js";
import { CLAIM_ANNOTATION } from "../measure/claim.js";
import { HOLD_FINALIZER } from "../measure/hold.js";

export type Target = "knative" | "openfaas";
export type OpenFaasEdition = "ce" | "standard";

export interface ManifestOptions {
  /** Where the function (and the webhook, the Broker) runs. */
  readonly namespace: string;
  /** POD_NAMESPACES. */
  readonly watch: readonly string[];
  /** OPTUNE_ACCOUNT; without it the function runs dry (prints what it would send). */
  readonly account?: string;
  /** The Secret (key `token`) in the function's namespace that holds OPTUNE_AUTH_TOKEN. */
  readonly tokenSecret: string;
  readonly appId: string;
  readonly target: Target;
  /** Broker + Trigger (retries, dead letters) instead of a direct sink. */
  readonly broker: boolean;
  /** A label selector for the pods the source watches, e.g. "batch.kubernetes.io/job-name". */
  readonly selector?: string;
  /** Also the admission webhook (needs cert-manager). */
  readonly webhook: boolean;
  /** PodMonitors, for Prometheus run by prometheus-operator (the pods carry prometheus.io/* annotations anyway). */
  readonly podMonitor?: boolean;
  /** Events carry Knative OIDC tokens for the function's audience, checked with TokenReview. */
  readonly eventAuth?: boolean;
  /** OpenFaaS CE (the default) gives the function no ServiceAccount; Standard and Enterprise do (com.openfaas.serviceaccount). */
  readonly openfaasEdition?: OpenFaasEdition;
  /** Where the Knative ingress gateway runs (its pods forward events to the function's pods). */
  readonly ingressNamespace?: string;
  /** Where Prometheus runs: the NetworkPolicy lets it scrape /metrics. */
  readonly prometheusNamespace?: string;
  /** PROMETHEUS_URL: each MEASUREMENT gets the run's cpu_time and max_memory from the cAdvisor series there. */
  readonly prometheusUrl?: string;
  /** The alert and recording rules as a PrometheusRule (prometheus-operator). */
  readonly prometheusRules?: boolean;
  /** Labels on the PodMonitors and the PrometheusRule, for a Prometheus that selects by label (kube-prometheus-stack: release). */
  readonly monitoringLabels?: Readonly<Record<string, string>>;
  /**
   * A ValidatingAdmissionPolicy that lets the function's ServiceAccount change only its claim
   * annotation and its finalizer on pods (default on; GA since Kubernetes 1.30: off for older ones).
   */
  readonly patchPolicy?: boolean;
}

/** What is deployed: the image (no default: only its builder knows where it was pushed) and the package version it was built from. */
export interface Release {
  /** Needed when a document runs it (imageNeeded): not for the event sources of a function on OpenFaaS alone. */
  readonly image?: string;
  /** app.kubernetes.io/version on every object. */
  readonly version: string;
}

export const DEFAULT_OPTIONS: ManifestOptions = {
  namespace: "optune-servo",
  watch: ["default"],
  tokenSecret: "optune-auth-token",
  appId: DEFAULT_APP_ID,
  target: "knative",
  broker: false,
  webhook: false,
  ingressNamespace: "kourier-system",
  prometheusNamespace: "monitoring",
};

/** The OIDC audience the function's sources ask tokens for (Knative's own form for an Addressable: group/kind/namespace/name). */
export function eventAudience(options: Pick<ManifestOptions, "namespace"> & Partial<Pick<ManifestOptions, "target">>): string {
  // On OpenFaaS the sinks are the gateway's URL of the function: that URL is its audience.
  return options.target === "openfaas" ? OPENFAAS_FUNCTION_URL : `serving.knative.dev/service/${options.namespace}/${FUNCTION}`;
}

/** The PingSource that asks for a sweep. */
const SWEEP_SOURCE = "servo-sweep";

/**
 * Who sends the function events when their tokens are checked: the OIDC service account Knative
 * makes for each source (eventing's pkg/auth GetOIDCServiceAccountNameForResource: the object's
 * name + "-oidc-" + group + "-" + kind, lower case), as a TokenReview names it. Direct: the
 * ApiServerSource in each watched namespace and the sweep's PingSource; with a Broker, the Trigger
 * that delivers them instead.
 */
export function eventSenders(options: Pick<ManifestOptions, "namespace" | "watch" | "broker">): string[] {
  const account = (namespace: string, name: string, group: string, kind: string) => {
    const user = `${name}-oidc-${group}-${kind}`.toLowerCase();
    // Knative shortens longer names with a hash (kmeta.ChildName); ours are fixed and short.
    if (user.length > 63) throw new Error(`the OIDC service account name ${user} is longer than 63 characters`);
    return `system:serviceaccount:${namespace}:${user}`;
  };
  const pings = account(options.namespace, SWEEP_SOURCE, "sources.knative.dev", "PingSource");
  if (options.broker) return [account(options.namespace, FUNCTION, "eventing.knative.dev", "Trigger"), pings];
  return [...options.watch.map((watched) => account(watched, SOURCE, "sources.knative.dev", "ApiServerSource")), pings];
}

/** Image references: registry/path:tag@digest characters, nothing YAML or a shell could read otherwise. */
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$/;

export type Manifest = { readonly apiVersion: string; readonly kind: string; readonly metadata: { readonly name: string; readonly namespace?: string } & Record<string, unknown> } & Record<string, unknown>;

/** A document and the comment printed above it. */
export interface Documented {
  readonly comment: string;
  readonly manifest: Manifest;
}

export const FUNCTION = "servo-k8s-multijob";
export const SOURCE = "job-pods";
export const SOURCE_ACCOUNT = "servo-k8s-multijob-source";
export const WEBHOOK = "servo-k8s-multijob-webhook";
export const DEAD_LETTERS = "servo-dead-letters";
export const OPENFAAS_GATEWAY = "http://gateway.openfaas.svc.cluster.local:8080";
const OPENFAAS_FUNCTION_URL = `${OPENFAAS_GATEWAY}/function/${FUNCTION}`;
/** Where OpenFaaS runs its functions (faas-netes' default). */
export const OPENFAAS_FUNCTIONS = "openfaas-fn";
/**
 * Namespaces the generator never puts the servo in, nor watches: the platform's own (deleting the
 * output would delete them, and a watch there would give the function `patch pods` in them).
 * `default` may be watched, but the servo does not run there.
 */
export const SHARED_NAMESPACES = new Set(["kube-system", "kube-public", "kube-node-lease", "knative-serving", "knative-eventing", "openfaas", OPENFAAS_FUNCTIONS, "cert-manager", "monitoring", "istio-system", "kourier-system", "contour-external", "contour-internal", "gatekeeper-system", "kyverno"]);
const isShared = (namespace: string) => SHARED_NAMESPACES.has(namespace) || /^(kube|knative|openshift)-/.test(namespace);

/** For Prometheus' kubernetes-pods scrape config. */
const scrapeAnnotations = (port: number, scheme = "http") => ({ "prometheus.io/scrape": "true", "prometheus.io/port": String(port), "prometheus.io/path": "/metrics", ...(scheme === "https" ? { "prometheus.io/scheme": "https" } : {}) });
/** The function's image runs as this user (the node user of the official image), never root. */
export const RUN_AS_USER = 1000;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Why these options cannot make a working deployment, or undefined. */
export function optionsProblem(options: ManifestOptions): string | undefined {
  if (!DNS_LABEL.test(options.namespace)) return `--namespace ${JSON.stringify(options.namespace)} is not a namespace name`;
  if (isShared(options.namespace) || options.namespace === "default") {
    return `--namespace ${options.namespace} is shared with the platform or other workloads: the output would include it as a Namespace, and deleting the output would delete it; give the servo a namespace of its own, e.g. optune-servo`;
  }
  if (options.watch.length === 0) return "--watch names no namespace";
  for (const namespace of options.watch) if (!DNS_LABEL.test(namespace)) return `--watch: ${JSON.stringify(namespace)} is not a namespace name`;
  for (const namespace of options.watch) if (isShared(namespace)) return `--watch ${namespace}: a platform namespace, where the function would be allowed to patch pods; watch the namespaces your jobs run in`;
  if (options.watch.includes(options.namespace)) {
    return `--namespace ${options.namespace} is also watched: the function would watch its own pods (each of its starts and stops would wake it and say HELLO/GOODBYE); run it in a namespace of its own`;
  }
  if (new Set(options.watch).size !== options.watch.length) return "--watch names a namespace twice";
  if (options.openfaasEdition !== undefined && options.target !== "openfaas") return "--openfaas-edition applies to --target openfaas";
  if (options.target === "openfaas" && options.eventAuth === true && !hasOwnAccount(options)) {
    return "--event-auth needs the function's own ServiceAccount (to ask TokenReview), which OpenFaaS CE cannot give a function; use --openfaas-edition standard (Standard or Enterprise) or --target knative";
  }
  for (const [flag, namespace] of [["--ingress-namespace", options.ingressNamespace], ["--prometheus-namespace", options.prometheusNamespace]] as const) {
    if (namespace !== undefined && !DNS_LABEL.test(namespace)) return `${flag} ${JSON.stringify(namespace)} is not a namespace name`;
  }
  for (const [key, value] of Object.entries(options.monitoringLabels ?? {})) {
    if (!LABEL_KEY.test(key) || !LABEL_VALUE.test(value) || value.length > 63) return `--monitoring-label ${JSON.stringify(`${key}=${value}`)} is not a label (KEY=VALUE, e.g. release=kube-prometheus-stack)`;
  }
  if (!DNS_LABEL.test(options.tokenSecret)) return `--token-secret ${JSON.stringify(options.tokenSecret)} is not a Secret name`;
  if (options.selector !== undefined && parseSelector(options.selector) === undefined) return `--selector ${JSON.stringify(options.selector)} is not a label selector (e.g. "batch.kubernetes.io/job-name" or "team=ml,tier!=test")`;
  return undefined;
}

/** Whether the output runs our image: the Knative Service, the dead-letter sink (--broker), the webhook. */
export function imageNeeded(options: Pick<ManifestOptions, "target" | "broker" | "webhook">): boolean {
  return options.target === "knative" || options.broker || options.webhook;
}

/** Why this cannot be the image to run, or undefined. */
export function imageProblem(options: Pick<ManifestOptions, "target" | "broker" | "webhook">, image: string | undefined): string | undefined {
  if (image === undefined) return !imageNeeded(options) ? undefined : "--image is required: the image you built and pushed (docker build -t REGISTRY/servo-k8s-multijob:VERSION . && docker push ...), then --image REGISTRY/servo-k8s-multijob:VERSION";
  if (!IMAGE.test(image)) return "--image must be an image reference (letters, digits and . _ / : @ + -), e.g. registry.example.com/servo-k8s-multijob:1.0.0";
  return undefined;
}

/** How long the generated Trigger keeps retrying: 10 retries, exponential from 1 s. */
const BROKER_RETRY_WINDOW_SECONDS = 1023;

/** The configuration the function and the webhook get, as env entries (checked by loadConfig in the tests). */
export function functionEnv(options: ManifestOptions): object[] {
  return [
    { name: "POD_NAMESPACES", value: options.watch.join(",") },
    { name: "OPTUNE_APP_ID", value: options.appId },
    ...(options.prometheusUrl === undefined ? [] : [{ name: "PROMETHEUS_URL", value: options.prometheusUrl }]),
    // The Trigger below retries for about 17 minutes (1 + 2 + ... + 512 s): a 503 helps within that.
    ...(options.broker ? [{ name: "OPTUNE_SOURCE_RETRY_WINDOW", value: String(BROKER_RETRY_WINDOW_SECONDS) }] : []),
    ...(options.account === undefined
      ? []
      : [
          { name: "OPTUNE_ACCOUNT", value: options.account },
          // A mounted Secret is updated in place, and the servers read the file again: a rotated token needs no new revision.
          { name: "OPTUNE_AUTH_TOKEN_FILE", value: `${TOKEN_DIRECTORY}/token` },
        ]),
  ];
}

/** Where the Optune token Secret is mounted (a read-only volume; Knative refuses mounts at /, /dev, /tmp, /var). */
export const TOKEN_DIRECTORY = "/etc/optune";

/** The token Secret as a volume and its mount, for a container that sends to Optune (none when the function runs dry). */
export function tokenVolume(options: Pick<ManifestOptions, "account" | "tokenSecret">): { readonly volumes: object[]; readonly volumeMounts: object[] } {
  if (options.account === undefined) return { volumes: [], volumeMounts: [] };
  return {
    volumes: [{ name: "optune-token", secret: { secretName: options.tokenSecret, items: [{ key: "token", path: "token" }] } }],
    volumeMounts: [{ name: "optune-token", mountPath: TOKEN_DIRECTORY, readOnly: true }],
  };
}

const securityContext = { runAsNonRoot: true, runAsUser: RUN_AS_USER, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] }, seccompProfile: { type: "RuntimeDefault" } };
const resources = { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } };

export function manifests(options: ManifestOptions & Release): Documented[] {
  const problem = optionsProblem(options) ?? imageProblem(options, options.image);
  if (problem !== undefined) throw new Error(problem);
  return deployment(options).map((documented) => ({ ...documented, manifest: withStandardLabels(documented.manifest, options) }));
}

function deployment(options: ManifestOptions & Release): Documented[] {
  const { namespace } = options;
  const documents: Documented[] = [];
  const add = (comment: string, manifest: Manifest) => documents.push({ comment, manifest });
  const knative = options.target === "knative";
  const token = tokenVolume(options);
  // A Knative Service announces no OIDC audience of its own, so each sink names it (Destination.audience).
  const audience = options.eventAuth === true ? { audience: eventAudience(options) } : {};
  const sink = knative
    ? { ref: { apiVersion: "serving.knative.dev/v1", kind: "Service", name: FUNCTION, namespace }, ...audience }
    : { uri: OPENFAAS_FUNCTION_URL, ...audience };

  if (knative || hasOwnAccount(options) || options.broker || options.webhook || options.podMonitor === true) {
    add(`The namespace of the servo itself, made for it: never one it watches, never one it shares.`, { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels: { "app.kubernetes.io/managed-by": FUNCTION } } });
  }
  if (knative) {
    add("The function's identity: it claims pods (get, patch) and sweeps them (list) in the watched namespaces.", {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: FUNCTION, namespace },
    });
    add(
      options.account === undefined
        ? "The function. No --account was given, so it runs dry: it logs what it would send and sends nothing."
        : `The function. It reads the Optune token from the Secret ${options.tokenSecret} (key token) in ${namespace}, mounted as a file that follows its rotation.`,
      {
        apiVersion: "serving.knative.dev/v1",
        kind: "Service",
        // Cluster-local: not published on the external gateway (it would be, once a domain is set).
        metadata: { name: FUNCTION, namespace, labels: { "networking.knative.dev/visibility": "cluster-local" } },
        spec: {
          template: {
            metadata: { annotations: scrapeAnnotations(8080) },
            spec: {
              serviceAccountName: FUNCTION,
              ...(token.volumes.length === 0 ? {} : { volumes: token.volumes }),
              containers: [
                {
                  name: "function",
                  image: options.image!,
                  // Knative allows the names http1 and h2c; a PodMonitor needs a name.
                  ports: [{ name: "http1", containerPort: 8080 }],
                  env: [
                    ...functionEnv(options),
                    ...(options.eventAuth === true
                      ? [
                          { name: "OPTUNE_EVENT_AUDIENCE", value: eventAudience(options) },
                          { name: "OPTUNE_EVENT_SENDERS", value: eventSenders(options).join(",") },
                        ]
                      : []),
                  ],
                  readinessProbe: { httpGet: { path: "/readyz", port: 8080 } },
                  livenessProbe: { httpGet: { path: "/healthz", port: 8080 } },
                  ...(token.volumeMounts.length === 0 ? {} : { volumeMounts: token.volumeMounts }),
                  resources,
                  securityContext,
                },
              ],
            },
          },
        },
      },
    );
    documents.push(sweepSource(namespace, sink));
    if (options.eventAuth === true) documents.push(...tokenReviewAccess(namespace));
  }
  if (hasOwnAccount(options)) documents.push(...openfaasStandard(options, sink));
  documents.push(networkPolicy(options));
  if (options.broker) {
    add("The Broker the sources send to: a Trigger then retries through an Optune outage.", { apiVersion: "eventing.knative.dev/v1", kind: "Broker", metadata: { name: SOURCE, namespace } });
    add("Delivers every pod event to the function; 10 retries, exponential from 1 s (about 17 minutes), then the dead-letter sink.", {
      apiVersion: "eventing.knative.dev/v1",
      kind: "Trigger",
      metadata: { name: FUNCTION, namespace },
      spec: {
        broker: SOURCE,
        subscriber: sink,
        delivery: { retry: 10, backoffPolicy: "exponential", backoffDelay: "PT1S", deadLetterSink: { ref: { apiVersion: "v1", kind: "Service", name: DEAD_LETTERS } } },
      },
    });
    if (options.eventAuth === true) {
      // With OIDC on, Knative's default authorization ("allow-same-namespace") refuses the
      // ApiServerSources in the watched namespaces at the Broker (403, never retried): allow them.
      add("Lets the event sources in the watched namespaces send to the Broker: with OIDC, Knative's default authorization allows only the Broker's own namespace. Needs Knative Eventing >= 1.15.", {
        apiVersion: "eventing.knative.dev/v1alpha1",
        kind: "EventPolicy",
        metadata: { name: `${FUNCTION}-sources`, namespace },
        spec: {
          to: [{ ref: { apiVersion: "eventing.knative.dev/v1", kind: "Broker", name: SOURCE } }],
          from: options.watch.map((watched) => ({ ref: { apiVersion: "sources.knative.dev/v1", kind: "ApiServerSource", name: SOURCE, namespace: watched } })),
        },
      });
    }
    add(`Logs what could not be delivered, one line per event (its id, type and pod): kubectl -n ${namespace} logs deploy/${DEAD_LETTERS}`, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: DEAD_LETTERS, namespace, labels: { "app.kubernetes.io/name": DEAD_LETTERS } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { "app.kubernetes.io/name": DEAD_LETTERS } },
        template: {
          metadata: { labels: { "app.kubernetes.io/name": DEAD_LETTERS } },
          spec: {
            automountServiceAccountToken: false,
            // Our own image, so the sink has a tag: it logs each event's id, type and pod, never the pod (its env values).
            containers: [{ name: "dead-letters", image: options.image!, args: ["dead-letters"], ports: [{ containerPort: 8080 }], readinessProbe: { httpGet: { path: "/readyz", port: 8080 } }, resources, securityContext }],
          },
        },
      },
    });
    add("", { apiVersion: "v1", kind: "Service", metadata: { name: DEAD_LETTERS, namespace }, spec: { selector: { "app.kubernetes.io/name": DEAD_LETTERS }, ports: [{ port: 80, targetPort: 8080 }] } });
    documents.push(deadLettersPolicy(options));
  }

  if (knative && options.patchPolicy !== false) documents.push(...podPatchPolicy(options));

  for (const watched of options.watch) {
    if (knative) {
      add(`In ${watched}: what the function may do with pods. Get (re-reading after a conflict), list (the sweep), patch (its claim annotation).`, role(FUNCTION, watched, ["get", "list", "patch"]));
      add(`Bound to the function's ServiceAccount, which lives in ${namespace}.`, roleBinding(FUNCTION, watched, FUNCTION, namespace));
    }
    add(`In ${watched}: the event source's identity. It reads and watches pods there.`, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: SOURCE_ACCOUNT, namespace: watched } });
    add("", role(SOURCE_ACCOUNT, watched, ["get", "list", "watch"]));
    add("", roleBinding(SOURCE_ACCOUNT, watched, SOURCE_ACCOUNT, watched));
    add(
      `In ${watched}: every pod change as a CloudEvent with the whole Pod (mode Resource), sent to ${options.broker ? `the Broker in ${namespace}` : knative ? `the function in ${namespace}` : "the function on the OpenFaaS gateway"}.`,
      {
        apiVersion: "sources.knative.dev/v1",
        kind: "ApiServerSource",
        metadata: { name: SOURCE, namespace: watched },
        spec: {
          mode: "Resource",
          resources: [{ apiVersion: "v1", kind: "Pod", ...(options.selector === undefined ? {} : { selector: parseSelector(options.selector) }) }],
          serviceAccountName: SOURCE_ACCOUNT,
          sink: options.broker ? { ref: { apiVersion: "eventing.knative.dev/v1", kind: "Broker", name: SOURCE, namespace } } : sink,
        },
      },
    );
  }
  if (options.webhook) documents.push(...webhookManifests(options));
  if (options.podMonitor === true) documents.push(...podMonitors(options));
  if (options.prometheusRules === true) {
    documents.push({
      comment: "prometheus-operator: the alerts (each with what to do; the Runbook in docs/operations.md) and the recording rules the dashboard reads. NoEventsWhileJobsFinish needs kube-state-metrics.",
      manifest: { apiVersion: "monitoring.coreos.com/v1", kind: "PrometheusRule", metadata: { name: FUNCTION, namespace: options.namespace, ...monitoringLabels(options) }, spec: rulesFile(options) },
    });
  }
  return documents;
}

function sweepSource(namespace: string, sink: object): Documented {
  return {
    comment: "The sweep: every 5 minutes the function lists the watched namespaces for finished jobs the events missed.",
    manifest: { apiVersion: "sources.knative.dev/v1", kind: "PingSource", metadata: { name: SWEEP_SOURCE, namespace }, spec: { schedule: "*/5 * * * *", contentType: "application/json", data: '{"sweep": true}', sink } },
  };
}

/** TokenReview for the function's ServiceAccount in `accountNamespace`: event authentication. */
function tokenReviewAccess(accountNamespace: string): Documented[] {
  const name = `${FUNCTION}-tokenreview`;
  return [
    {
      comment: "Event authentication: the function asks the API server whether each event's OIDC token is valid for its audience (TokenReview, cluster-wide by nature).",
      manifest: { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name }, rules: [{ apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] }] },
    },
    {
      comment: "",
      manifest: {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name },
        subjects: [{ kind: "ServiceAccount", name: FUNCTION, namespace: accountNamespace }],
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      },
    },
  ];
}

/** OpenFaaS Standard or Enterprise: the function runs as a ServiceAccount of its own (com.openfaas.serviceaccount). */
function hasOwnAccount(options: Pick<ManifestOptions, "target" | "openfaasEdition">): boolean {
  return options.target === "openfaas" && options.openfaasEdition === "standard";
}

/**
 * What OpenFaaS Standard and Enterprise make possible beside CE's sources: the function's own
 * ServiceAccount in openfaas-fn (functions-standard.yml names it), allowed to claim pods in the
 * watched namespaces, so claims in the pods, several replicas and the sweep; and event authentication.
 */
function openfaasStandard(options: ManifestOptions, sink: object): Documented[] {
  const documents: Documented[] = [
    {
      comment: `The function's identity on OpenFaaS Standard or Enterprise: functions-standard.yml names it (com.openfaas.serviceaccount). It claims pods (get, patch) and sweeps them (list) in ${options.watch.join(", ")}.`,
      manifest: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: FUNCTION, namespace: OPENFAAS_FUNCTIONS } },
    },
    ...options.watch.flatMap((watched) => [
      { comment: `In ${watched}: what the function may do with pods. Get (re-reading after a conflict), list (the sweep), patch (its claim annotation).`, manifest: role(FUNCTION, watched, ["get", "list", "patch"]) },
      { comment: `Bound to the function's ServiceAccount, which lives in ${OPENFAAS_FUNCTIONS}.`, manifest: roleBinding(FUNCTION, watched, FUNCTION, OPENFAAS_FUNCTIONS) },
    ]),
    sweepSource(options.namespace, sink),
  ];
  return options.eventAuth === true ? [...documents, ...tokenReviewAccess(OPENFAAS_FUNCTIONS)] : documents;
}

/**
 * Who may reach the function's pods. On Knative Serving no source sends to a pod directly: the
 * ApiServerSource adapters, the PingSource adapter and the Broker filter in knative-eventing post to
 * the Service's URL, and the ingress gateway or the activator (knative-serving, label app=activator,
 * config/core/deployments/activator.yaml) forward to the pod; the autoscaler (app=autoscaler)
 * scrapes queue-proxy. On OpenFaaS the gateway (namespace openfaas, app=gateway) forwards. Prometheus
 * scrapes /metrics on port 8080. A network layer only: deletes are believed only with a claim or an
 * authenticated sender (--event-auth), since anyone who reaches the gateway can reach the function.
 */
function networkPolicy(options: ManifestOptions): Documented {
  const knative = options.target === "knative";
  const inNamespace = (name: string, labels?: Record<string, string>) => ({
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": name } },
    ...(labels === undefined ? {} : { podSelector: { matchLabels: labels } }),
  });
  const prometheus = { from: [inNamespace(options.prometheusNamespace ?? DEFAULT_OPTIONS.prometheusNamespace!)], ports: [{ protocol: "TCP", port: 8080 }] };
  const from = knative
    ? [inNamespace("knative-serving", { app: "activator" }), inNamespace("knative-serving", { app: "autoscaler" }), inNamespace(options.ingressNamespace ?? DEFAULT_OPTIONS.ingressNamespace!)]
    : [inNamespace("openfaas", { app: "gateway" })];
  return {
    comment: knative
      ? `Only the Knative data plane reaches the function's pods: the activator and autoscaler in knative-serving, the ingress gateway in ${options.ingressNamespace} (--ingress-namespace), and Prometheus in ${options.prometheusNamespace} (--prometheus-namespace) on /metrics.`
      : `Only the OpenFaaS gateway reaches the function's pods in ${OPENFAAS_FUNCTIONS}, and Prometheus in ${options.prometheusNamespace} (--prometheus-namespace) on /metrics.`,
    manifest: {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: FUNCTION, namespace: knative ? options.namespace : OPENFAAS_FUNCTIONS },
      spec: {
        podSelector: { matchLabels: knative ? { "serving.knative.dev/service": FUNCTION } : { faas_function: FUNCTION } },
        policyTypes: ["Ingress"],
        ingress: [{ from }, prometheus],
      },
    },
  };
}

/** A NetworkPolicy that admits only `ingress` to the pods with `podLabels`. */
function ingressPolicy(comment: string, name: string, namespace: string, podLabels: Readonly<Record<string, string>>, ingress: readonly object[]): Documented {
  return { comment, manifest: { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace }, spec: { podSelector: { matchLabels: { ...podLabels } }, policyTypes: ["Ingress"], ingress } } };
}

/** The dead-letter sink hears only Knative Eventing: the Broker's dispatchers deliver what the Trigger gave up on (their pods run in knative-eventing). */
function deadLettersPolicy(options: ManifestOptions): Documented {
  const eventing = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "knative-eventing" } } };
  return ingressPolicy("Only Knative Eventing's dispatchers (in knative-eventing) reach the dead-letter sink.", DEAD_LETTERS, options.namespace, { "app.kubernetes.io/name": DEAD_LETTERS }, [{ from: [eventing], ports: [{ protocol: "TCP", port: 8080 }] }]);
}

/**
 * The webhook's pods answer on 8443 only. The API server's calls come from the control plane's
 * addresses, which no pod or namespace selector names (and differ per provider), so the port is
 * open to every source, as for any admission webhook; Prometheus scrapes the same port.
 */
function webhookPolicy(options: ManifestOptions, labels: Readonly<Record<string, string>>): Documented {
  return ingressPolicy("The webhook's pods accept only HTTPS on 8443 (the API server's calls and Prometheus' scrapes); nothing else reaches them.", WEBHOOK, options.namespace, labels, [{ ports: [{ protocol: "TCP", port: 8443 }] }]);
}

/**
 * cert-manager's chain for the webhook: a self-signed root makes a CA, the CA Issuer signs the
 * serving certificate. cainjector puts the CA (the leaf Secret's ca.crt) into the caBundle, so a
 * renewed leaf is trusted at once; with a self-signed leaf the bundle changed at each renewal and
 * pods created before cainjector caught up were admitted untuned.
 */
function webhookCertificates(namespace: string): Documented[] {
  const ca = `${WEBHOOK}-ca`;
  return [
    { comment: "cert-manager: a self-signed root, only to make the webhook's CA.", manifest: { apiVersion: "cert-manager.io/v1", kind: "Issuer", metadata: { name: `${WEBHOOK}-root`, namespace }, spec: { selfSigned: {} } } },
    {
      comment: "The webhook's CA, valid 10 years: what the caBundle holds, unchanged by the serving certificate's renewals.",
      manifest: {
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: { name: ca, namespace },
        spec: { isCA: true, commonName: ca, secretName: ca, duration: "87600h", privateKey: { algorithm: "ECDSA", size: 256 }, issuerRef: { name: `${WEBHOOK}-root`, kind: "Issuer" } },
      },
    },
    { comment: "Signs the serving certificate with that CA.", manifest: { apiVersion: "cert-manager.io/v1", kind: "Issuer", metadata: { name: WEBHOOK, namespace }, spec: { ca: { secretName: ca } } } },
    {
      comment: "The serving certificate, renewed in place by cert-manager (a new key each time).",
      manifest: {
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: { name: WEBHOOK, namespace },
        spec: { secretName: `${WEBHOOK}-tls`, dnsNames: [`${WEBHOOK}.${namespace}.svc`], issuerRef: { name: WEBHOOK, kind: "Issuer" }, privateKey: { rotationPolicy: "Always" } },
      },
    },
  ];
}

/**
 * RBAC cannot narrow `patch pods` to one annotation: with the function's token, a PATCH could
 * change a running pod's image. This policy (admissionregistration.k8s.io/v1, GA since 1.30) lets
 * that ServiceAccount change, on the pods of the watched namespaces, only the claim annotation and
 * the finalizer that holds a pod until it is reported.
 */
function podPatchPolicy(options: ManifestOptions): Documented[] {
  const name = `${FUNCTION}-pod-patches`;
  const ours = (field: string) => `'${field}'`;
  const map = (object: string, field: string) => `(has(${object}.metadata.${field}) ? ${object}.metadata.${field} : {})`;
  const list = (object: string, field: string) => `(has(${object}.metadata.${field}) ? ${object}.metadata.${field} : [])`;
  const unchanged = (field: string) => `${map("object", field)} == ${map("oldObject", field)}`;
  const annotation = ours(CLAIM_ANNOTATION);
  const finalizer = ours(HOLD_FINALIZER);
  return [
    {
      comment: "The function may change only its claim annotation and its finalizer on pods: RBAC's patch alone would let it change any field of a running pod.",
      manifest: {
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "ValidatingAdmissionPolicy",
        metadata: { name },
        spec: {
          failurePolicy: "Fail",
          matchConstraints: { resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["pods"] }] },
          matchConditions: [{ name: "the-function", expression: `request.userInfo.username == 'system:serviceaccount:${options.namespace}:${FUNCTION}'` }],
          validations: [
            { expression: "object.spec == oldObject.spec", message: "the function may not change a pod's spec" },
            { expression: unchanged("labels"), message: "the function may not change a pod's labels" },
            { expression: `${list("object", "ownerReferences")} == ${list("oldObject", "ownerReferences")}`, message: "the function may not change a pod's owners" },
            {
              expression: `${map("object", "annotations")}.all(k, k == ${annotation} || (k in ${map("oldObject", "annotations")} && ${map("oldObject", "annotations")}[k] == ${map("object", "annotations")}[k])) && ${map("oldObject", "annotations")}.all(k, k == ${annotation} || k in ${map("object", "annotations")})`,
              message: `the function may change only the ${CLAIM_ANNOTATION} annotation`,
            },
            { expression: `${list("object", "finalizers")}.filter(f, f != ${finalizer}) == ${list("oldObject", "finalizers")}.filter(f, f != ${finalizer})`, message: `the function may change only the ${HOLD_FINALIZER} finalizer` },
          ],
        },
      },
    },
    {
      comment: "",
      manifest: {
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "ValidatingAdmissionPolicyBinding",
        metadata: { name },
        spec: {
          policyName: name,
          validationActions: ["Deny"],
          matchResources: { namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [...options.watch] }] } },
        },
      },
    },
  ];
}

function role(name: string, namespace: string, verbs: string[]): Manifest {
  return { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name, namespace }, rules: [{ apiGroups: [""], resources: ["pods"], verbs }] };
}

function roleBinding(name: string, namespace: string, account: string, accountNamespace: string): Manifest {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name, namespace },
    subjects: [{ kind: "ServiceAccount", name: account, namespace: accountNamespace }],
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
  };
}

/**
 * The webhook holds job pods (a finalizer) until the function has reported them; the OpenFaaS CE
 * function keeps no claims in the pods and cannot let them go, so there it holds none.
 */
function holdEnv(options: ManifestOptions): object[] {
  return options.target === "openfaas" && !hasOwnAccount(options) ? [{ name: "OPTUNE_HOLD", value: "0" }] : [];
}

/** The admission webhook: a Deployment behind a Service, its cert-manager certificate, and the MutatingWebhookConfiguration. */
function webhookManifests(options: ManifestOptions & Release): Documented[] {
  const { namespace } = options;
  const labels = { "app.kubernetes.io/name": WEBHOOK };
  const filter = appIdFilter(options.appId);
  const token = tokenVolume(options);
  const documents: Documented[] = [
    { comment: "The admission webhook's identity: it reads the watched namespaces' LimitRanges and ResourceQuotas, so that Optune's settings never make the API server refuse a pod.", manifest: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: WEBHOOK, namespace } } },
    ...options.watch.flatMap((watched): Documented[] => [
      {
        comment: `In ${watched}: what bounds a pod's resources there, for the webhook.`,
        manifest: { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: WEBHOOK, namespace: watched }, rules: [{ apiGroups: [""], resources: ["limitranges", "resourcequotas"], verbs: ["list", "watch"] }] },
      },
      { comment: "", manifest: roleBinding(WEBHOOK, watched, WEBHOOK, namespace) },
    ]),
    ...webhookCertificates(namespace),
    {
      comment: "The webhook: a Deployment, since the API server calls webhooks only over HTTPS and a Service scaled to zero could not answer within timeoutSeconds.",
      manifest: {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: WEBHOOK, namespace, labels },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels, annotations: scrapeAnnotations(8443, "https") },
            spec: {
              serviceAccountName: WEBHOOK,
              // SIGTERM: /readyz fails at once, admissions are served 5 s more (WEBHOOK_SHUTDOWN_DELAY), then drained within SHUTDOWN_TIMEOUT (25 s).
              terminationGracePeriodSeconds: 30,
              securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
              // One replica per node, spread over zones where it can be: a node or a zone down leaves one answering.
              topologySpreadConstraints: [
                { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: labels } },
                { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: labels } },
              ],
              containers: [
                {
                  name: "webhook",
                  image: options.image!,
                  args: ["webhook"],
                  ports: [{ name: "https", containerPort: 8443 }],
                  env: [...functionEnv(options), { name: "OPTUNE_ADJUST_BUDGET", value: "5" }, ...holdEnv(options)],
                  readinessProbe: { httpGet: { scheme: "HTTPS", path: "/readyz", port: "https" } },
                  livenessProbe: { httpGet: { scheme: "HTTPS", path: "/healthz", port: "https" } },
                  volumeMounts: [{ name: "tls", mountPath: "/etc/webhook/tls", readOnly: true }, ...token.volumeMounts],
                  resources,
                  securityContext,
                },
              ],
              volumes: [{ name: "tls", secret: { secretName: `${WEBHOOK}-tls` } }, ...token.volumes],
            },
          },
        },
      },
    },
    { comment: "", manifest: { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: WEBHOOK, namespace }, spec: { minAvailable: 1, selector: { matchLabels: labels } } } },
    { comment: "", manifest: { apiVersion: "v1", kind: "Service", metadata: { name: WEBHOOK, namespace }, spec: { selector: labels, ports: [{ name: "https", port: 443, targetPort: "https" }] } } },
    webhookPolicy(options, labels),
    {
      comment:
        "Never blocks a pod (failurePolicy Ignore); only CREATE of pods in the watched namespaces, never its own." + filter.note,
      manifest: {
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "MutatingWebhookConfiguration",
        metadata: { name: FUNCTION, annotations: { "cert-manager.io/inject-ca-from": `${namespace}/${WEBHOOK}` } },
        webhooks: [
          {
            name: "jobs.servo-k8s-multijob.optune.ai",
            admissionReviewVersions: ["v1"],
            sideEffects: "NoneOnDryRun",
            failurePolicy: "Ignore",
            timeoutSeconds: 10,
            reinvocationPolicy: "Never",
            clientConfig: { service: { name: WEBHOOK, namespace, path: "/mutate", port: 443 } },
            rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }],
            namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [...options.watch] }] },
            // Only pods that have the app id at all reach the webhook.
            ...filter.fields,
          },
        ],
      },
    },
  ];
  return documents;
}

/**
 * What keeps pods without the app id away from the webhook, for an OPTUNE_APP_ID path: the env var
 * of a container and an annotation by matchConditions (CEL, Kubernetes 1.30+; beta and on
 * in 1.28-1.29), a label by an objectSelector (every release); any other path cannot be filtered
 * before the call, and the note says so.
 */
function appIdFilter(appId: string): { readonly fields: Record<string, unknown>; readonly note: string } {
  const elements = appId.split("/").filter((element) => element !== "");
  const env = /^\[([^,\]]+)\]$/.exec(elements[4] ?? "")?.[1];
  const conditionNote = " matchConditions needs Kubernetes >= 1.30 (beta, on by default, in 1.28-1.29); delete it on older clusters.";
  if (elements.length === 5 && elements[0] === "spec" && elements[1] === "containers" && elements[2] === "0" && elements[3] === "env" && env !== undefined) {
    return { fields: { matchConditions: [{ name: "has-app-id", expression: appIdCondition(env) }] }, note: conditionNote };
  }
  if (elements.length === 3 && elements[0] === "metadata" && elements[1] === "labels" && LABEL_KEY.test(elements[2]!)) {
    return { fields: { objectSelector: { matchExpressions: [{ key: elements[2], operator: "Exists" }] } }, note: " Only pods with the app-id label reach it (objectSelector)." };
  }
  if (elements.length === 3 && elements[0] === "metadata" && elements[1] === "annotations") {
    return { fields: { matchConditions: [{ name: "has-app-id", expression: `has(object.metadata.annotations) && ${celString(elements[2]!)} in object.metadata.annotations` }] }, note: conditionNote };
  }
  return { fields: {}, note: ` Every pod created in the watched namespaces calls it: no filter can be written for --app-id ${appId}.` };
}

/**
 * The CEL condition "a container has the app-id env var": any container, since a mesh's injector,
 * called before this webhook, puts its proxy first (the webhook then skips it). has() rather than optional
 * types (`.?env.orValue([])`): Kubernetes adds optional types to its CEL base environment in 1.28
 * (apiserver/pkg/cel/environment/base.go), but a new expression is compiled with the previous
 * release's environment, so they pass validation only from 1.29; the README promises 1.28.
 */
export function appIdCondition(envVar: string): string {
  return `object.spec.containers.exists(c, has(c.env) && c.env.exists(e, e.name == ${celString(envVar)}))`;
}

/** A CEL string literal: double-quoted, with backslash and quote escaped (the value is printable: checked before). */
export function celString(value: string): string {
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** For prometheus-operator: scrape GET /metrics of the function (and of the webhook, over HTTPS). */
function podMonitors(options: ManifestOptions): Documented[] {
  const { namespace } = options;
  const monitor = (name: string, spec: object): Manifest => ({ apiVersion: "monitoring.coreos.com/v1", kind: "PodMonitor", metadata: { name, namespace, ...monitoringLabels(options) }, spec });
  const documents: Documented[] = [
    options.target === "knative"
      ? {
          comment: "prometheus-operator: scrape the function's /metrics (counters restart with each instance; use rate() and increase()).",
          // Knative renames the user container's port to user-port in the Deployment it makes
          // (buildContainerPorts in pkg/reconciler/revision/resources/deploy.go); queue-proxy's ports
          // (queue-port 8012, http-autometric 9090, http-usermetric 9091) are its own metrics, not ours.
          manifest: monitor(FUNCTION, { selector: { matchLabels: { "serving.knative.dev/service": FUNCTION } }, podMetricsEndpoints: [{ port: "user-port", path: "/metrics" }] }),
        }
      : {
          comment: `prometheus-operator: scrape the function's /metrics in ${OPENFAAS_FUNCTIONS}.`,
          manifest: monitor(FUNCTION, { namespaceSelector: { matchNames: [OPENFAAS_FUNCTIONS] }, selector: { matchLabels: { faas_function: FUNCTION } }, podMetricsEndpoints: [{ targetPort: 8080, path: "/metrics" }] }),
        },
  ];
  if (options.webhook) {
    documents.push({
      comment: "The webhook's /metrics, on its HTTPS port (its certificate is for the Service, so not verified here).",
      manifest: monitor(WEBHOOK, { selector: { matchLabels: { "app.kubernetes.io/name": WEBHOOK } }, podMetricsEndpoints: [{ port: "https", scheme: "https", path: "/metrics", tlsConfig: { insecureSkipVerify: true } }] }),
    });
  }
  return documents;
}

/** --monitoring-label: what a Prometheus' podMonitorSelector and ruleSelector look for. */
function monitoringLabels(options: ManifestOptions): { labels?: Record<string, string> } {
  return options.monitoringLabels === undefined || Object.keys(options.monitoringLabels).length === 0 ? {} : { labels: { ...options.monitoringLabels } };
}

export type Component = "function" | "event-source" | "event-delivery" | "webhook" | "monitoring" | "namespace";

/** Which part of the servo a document belongs to (app.kubernetes.io/component), by kind and name. */
export function componentOf(manifest: Manifest): Component {
  const { kind, metadata } = manifest;
  if (kind === "Namespace") return "namespace";
  if (kind === "PodMonitor" || kind === "PrometheusRule") return "monitoring";
  if (kind === "MutatingWebhookConfiguration" || metadata.name.startsWith(WEBHOOK)) return "webhook";
  if (kind === "Broker" || kind === "Trigger" || kind === "EventPolicy" || metadata.name === DEAD_LETTERS) return "event-delivery";
  if (kind === "ApiServerSource" || kind === "PingSource" || metadata.name === SOURCE_ACCOUNT) return "event-source";
  return "function";
}

/** The label every object of every install carries: what `uninstall` and `kubectl get -l` find. */
export const PART_OF = { "app.kubernetes.io/part-of": FUNCTION } as const;

/**
 * The recommended labels (kubernetes.io/docs/concepts/overview/working-with-objects/common-labels),
 * on the object's own metadata only: selectors and pod templates keep theirs, since a Deployment's
 * selector cannot change on upgrade. An object that names itself (the webhook, the dead-letter
 * sink) keeps its app.kubernetes.io/name; the instance is the servo's namespace, its own.
 */
export function withStandardLabels(manifest: Manifest, options: Pick<ManifestOptions, "namespace"> & Pick<Release, "version">): Manifest {
  const own = (manifest.metadata.labels ?? {}) as Record<string, string>;
  const labels = {
    "app.kubernetes.io/name": FUNCTION,
    ...own,
    "app.kubernetes.io/instance": options.namespace,
    "app.kubernetes.io/version": options.version,
    "app.kubernetes.io/component": componentOf(manifest),
    ...PART_OF,
    "app.kubernetes.io/managed-by": FUNCTION,
  };
  return { ...manifest, metadata: { ...manifest.metadata, labels } };
}

type Selector = { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> };

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** "k", "!k", "k=v", "k==v", "k!=v", "k in (a,b)", "k notin (a,b)", joined by commas (all must hold). */
export function parseSelector(text: string): Selector | undefined {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: Array<{ key: string; operator: string; values?: string[] }> = [];
  for (const term of text.match(/[^,(]+(\([^)]*\))?/g) ?? []) {
    const item = term.trim().replace(/^,/, "").trim();
    let match: RegExpExecArray | null;
    if ((match = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(item))) {
      const values = match[3]!.split(",").map((value) => value.trim());
      if (!LABEL_KEY.test(match[1]!) || !values.every((value) => LABEL_VALUE.test(value))) return undefined;
      matchExpressions.push({ key: match[1]!, operator: match[2] === "in" ? "In" : "NotIn", values });
    } else if ((match = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(item))) {
      if (!LABEL_KEY.test(match[1]!) || !LABEL_VALUE.test(match[3]!)) return undefined;
      if (match[2] === "!=") matchExpressions.push({ key: match[1]!, operator: "NotIn", values: [match[3]!] });
      else matchLabels[match[1]!] = match[3]!;
    } else if ((match = /^(!?)(\S+)$/.exec(item))) {
      if (!LABEL_KEY.test(match[2]!)) return undefined;
      matchExpressions.push({ key: match[2]!, operator: match[1] === "!" ? "DoesNotExist" : "Exists" });
    } else return undefined;
  }
  if (Object.keys(matchLabels).length === 0 && matchExpressions.length === 0) return undefined;
  return { ...(Object.keys(matchLabels).length > 0 ? { matchLabels } : {}), ...(matchExpressions.length > 0 ? { matchExpressions } : {}) };
}
