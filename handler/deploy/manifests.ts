// `servo-k8s-multijob manifests`: everything a deployment needs, from options that mirror the
// configuration, as Kubernetes objects (pure: options in, documents out; the CLI prints them as
// YAML for `kubectl apply -f -`). Per watched namespace: the event source with its sink in the
// function's namespace, and the Roles and RoleBindings for the function and for the source, bound
// to the right subjects. The function never runs in a namespace it watches.
import { DEFAULT_APP_ID } from "../edges/config.js";
import { rulesFile } from "./monitoring.js";

export type Target = "knative" | "openfaas";
export type OpenFaasEdition = "ce" | "standard";

export interface ManifestOptions {
  /** Where the function (and the webhook, the Broker) runs. */
  readonly namespace: string;
  /** POD_NAMESPACES. */
  readonly watch: readonly string[];
  readonly image: string;
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
}

export const DEFAULT_OPTIONS: ManifestOptions = {
  namespace: "optune-servo",
  watch: ["default"],
  image: "docker.io/your-user/servo-k8s-multijob:0.2.0",
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
  if (!IMAGE.test(options.image)) return "--image must be an image reference (letters, digits and . _ / : @ + -), e.g. ghcr.io/acme/servo-k8s-multijob:0.2.0";
  if (!DNS_LABEL.test(options.tokenSecret)) return `--token-secret ${JSON.stringify(options.tokenSecret)} is not a Secret name`;
  if (options.selector !== undefined && parseSelector(options.selector) === undefined) return `--selector ${JSON.stringify(options.selector)} is not a label selector (e.g. "batch.kubernetes.io/job-name" or "team=ml,tier!=test")`;
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
          { name: "OPTUNE_AUTH_TOKEN", valueFrom: { secretKeyRef: { name: options.tokenSecret, key: "token" } } },
        ]),
  ];
}

const securityContext = { runAsNonRoot: true, runAsUser: RUN_AS_USER, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] }, seccompProfile: { type: "RuntimeDefault" } };
const resources = { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } };

export function manifests(options: ManifestOptions): Documented[] {
  const problem = optionsProblem(options);
  if (problem !== undefined) throw new Error(problem);
  const { namespace } = options;
  const documents: Documented[] = [];
  const add = (comment: string, manifest: Manifest) => documents.push({ comment, manifest });
  const knative = options.target === "knative";
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
        : `The function. It reads the Optune token from the Secret ${options.tokenSecret} (key token) in ${namespace}.`,
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
              containers: [
                {
                  name: "function",
                  image: options.image,
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
            containers: [{ name: "dead-letters", image: options.image, args: ["dead-letters"], ports: [{ containerPort: 8080 }], readinessProbe: { httpGet: { path: "/readyz", port: 8080 } }, resources, securityContext }],
          },
        },
      },
    });
    add("", { apiVersion: "v1", kind: "Service", metadata: { name: DEAD_LETTERS, namespace }, spec: { selector: { "app.kubernetes.io/name": DEAD_LETTERS }, ports: [{ port: 80, targetPort: 8080 }] } });
  }

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
      comment: "prometheus-operator: the alerts (each with what to do; the README's Runbook) and the recording rules the dashboard reads. NoEventsWhileJobsFinish needs kube-state-metrics.",
      manifest: { apiVersion: "monitoring.coreos.com/v1", kind: "PrometheusRule", metadata: { name: FUNCTION, namespace: options.namespace, labels: { "app.kubernetes.io/name": FUNCTION } }, spec: rulesFile(options) },
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

/** The admission webhook: a Deployment behind a Service, its cert-manager certificate, and the MutatingWebhookConfiguration. */
function webhookManifests(options: ManifestOptions): Documented[] {
  const { namespace } = options;
  const labels = { "app.kubernetes.io/name": WEBHOOK };
  const filter = appIdFilter(options.appId);
  const documents: Documented[] = [
    { comment: "The admission webhook's identity: it reads the watched namespaces' LimitRanges and ResourceQuotas, so that Optune's settings never make the API server refuse a pod.", manifest: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: WEBHOOK, namespace } } },
    ...options.watch.flatMap((watched): Documented[] => [
      {
        comment: `In ${watched}: what bounds a pod's resources there, for the webhook.`,
        manifest: { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: WEBHOOK, namespace: watched }, rules: [{ apiGroups: [""], resources: ["limitranges", "resourcequotas"], verbs: ["list"] }] },
      },
      { comment: "", manifest: roleBinding(WEBHOOK, watched, WEBHOOK, namespace) },
    ]),
    { comment: "cert-manager makes the webhook's certificate and renews it in place.", manifest: { apiVersion: "cert-manager.io/v1", kind: "Issuer", metadata: { name: WEBHOOK, namespace }, spec: { selfSigned: {} } } },
    {
      comment: "",
      manifest: {
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: { name: WEBHOOK, namespace },
        spec: { secretName: `${WEBHOOK}-tls`, dnsNames: [`${WEBHOOK}.${namespace}.svc`], issuerRef: { name: WEBHOOK, kind: "Issuer" }, privateKey: { rotationPolicy: "Always" } },
      },
    },
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
              containers: [
                {
                  name: "webhook",
                  image: options.image,
                  args: ["webhook"],
                  ports: [{ name: "https", containerPort: 8443 }],
                  env: [...functionEnv(options), { name: "OPTUNE_ADJUST_BUDGET", value: "5" }],
                  readinessProbe: { httpGet: { scheme: "HTTPS", path: "/readyz", port: "https" } },
                  livenessProbe: { httpGet: { scheme: "HTTPS", path: "/healthz", port: "https" } },
                  volumeMounts: [{ name: "tls", mountPath: "/etc/webhook/tls", readOnly: true }],
                  resources,
                  securityContext,
                },
              ],
              volumes: [{ name: "tls", secret: { secretName: `${WEBHOOK}-tls` } }],
            },
          },
        },
      },
    },
    { comment: "", manifest: { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: WEBHOOK, namespace }, spec: { minAvailable: 1, selector: { matchLabels: labels } } } },
    { comment: "", manifest: { apiVersion: "v1", kind: "Service", metadata: { name: WEBHOOK, namespace }, spec: { selector: labels, ports: [{ name: "https", port: 443, targetPort: "https" }] } } },
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
  const monitor = (name: string, spec: object): Manifest => ({ apiVersion: "monitoring.coreos.com/v1", kind: "PodMonitor", metadata: { name, namespace }, spec });
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
