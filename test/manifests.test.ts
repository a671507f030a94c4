// `servo-k8s-multijob manifests`: every document it prints is valid against the published schemas
// (kubernetes-models, @kubernetes-models/knative and cert-manager, offline), and fits together the
// way a schema cannot check: sinks resolve, RBAC subjects exist, the env is a valid configuration,
// the function never watches itself. The files in example/ are exactly what it prints.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { Namespace, Service as CoreService, ServiceAccount } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding } from "kubernetes-models/admissionregistration.k8s.io/v1";
import { Service as KnativeService } from "@kubernetes-models/knative/serving.knative.dev/v1/Service";
import { ApiServerSource } from "@kubernetes-models/knative/sources.knative.dev/v1/ApiServerSource";
import { PingSource } from "@kubernetes-models/knative/sources.knative.dev/v1/PingSource";
import { Broker } from "@kubernetes-models/knative/eventing.knative.dev/v1/Broker";
import { Trigger } from "@kubernetes-models/knative/eventing.knative.dev/v1/Trigger";
import { Certificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate";
import { Issuer } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { KNOWN_VARIABLES, loadConfig } from "../handler/edges/config.js";
import { DEFAULT_OPTIONS, eventAudience, imageProblem, manifests, optionsProblem, parseSelector, SOURCE_ACCOUNT, TOKEN_DIRECTORY, type Manifest, type ManifestOptions } from "../handler/deploy/manifests.js";
import { alertRules } from "../handler/deploy/monitoring.js";
import { INSTALLED_KINDS, objectsOf, renderUninstall, toDelete, type ObjectRef } from "../handler/deploy/uninstall.js";
import { EXAMPLES, exampleOptions, renderExample } from "./support/examples.js";
import { REPOSITORY, runCli } from "./support/cli.js";
import { PACKAGE_VERSION, RELEASE, TEST_OPTIONS, VARIANTS } from "./support/manifest-variants.js";

type Model = new (data: never) => { validate(): void };
const MODELS: Record<string, Model> = {
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "v1/Service": CoreService,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
  "rbac.authorization.k8s.io/v1/ClusterRole": ClusterRole,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ClusterRoleBinding,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": MutatingWebhookConfiguration,
  "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy": ValidatingAdmissionPolicy,
  "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding": ValidatingAdmissionPolicyBinding,
  "serving.knative.dev/v1/Service": KnativeService,
  "sources.knative.dev/v1/ApiServerSource": ApiServerSource,
  "sources.knative.dev/v1/PingSource": PingSource,
  "eventing.knative.dev/v1/Broker": Broker,
  "eventing.knative.dev/v1/Trigger": Trigger,
  "cert-manager.io/v1/Certificate": Certificate,
  "cert-manager.io/v1/Issuer": Issuer,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};


const build = (variant: Partial<ManifestOptions>) => manifests({ ...TEST_OPTIONS, ...variant }).map((documented) => documented.manifest);
const find = (docs: readonly Manifest[], apiVersion: string, kind: string, name: string, namespace?: string) =>
  docs.find((doc) => doc.apiVersion === apiVersion && doc.kind === kind && doc.metadata.name === name && doc.metadata.namespace === namespace);
const spec = (doc: Manifest) => doc.spec as any;

/** Where a Knative Destination points must exist: a `ref` to an object in the output (defaulting to `from`'s namespace), or a URI on the gateway. */
function assertResolves(docs: readonly Manifest[], destination: any, from: string, what: string): void {
  if (destination.uri !== undefined) {
    assert.match(destination.uri, /^http:\/\/gateway\.openfaas\.svc\.cluster\.local:8080\/function\/servo-k8s-multijob$/, what);
    return;
  }
  const { apiVersion, kind, name, namespace = from } = destination.ref;
  assert.ok(find(docs, apiVersion, kind, name, namespace), `${what}: ${kind} ${namespace}/${name} is not in the output`);
}

function containersOf(doc: Manifest): any[] {
  if (doc.kind === "Deployment" || (doc.kind === "Service" && doc.apiVersion === "serving.knative.dev/v1")) return spec(doc).template.spec.containers;
  return [];
}

describe("manifests: every document is valid against the published schemas", () => {
  for (const variant of VARIANTS) {
    test(JSON.stringify(variant), () => {
      for (const doc of build(variant)) {
        // Knative's EventPolicy has no published model: the real CRD checks it (test/cluster/manifests.test.ts).
        if (`${doc.apiVersion}/${doc.kind}` === "eventing.knative.dev/v1alpha1/EventPolicy") continue;
        const model = MODELS[`${doc.apiVersion}/${doc.kind}`];
        assert.ok(model, `no schema for ${doc.apiVersion} ${doc.kind}`);
        assert.doesNotThrow(() => new model(structuredClone(doc) as never).validate(), `${doc.kind} ${doc.metadata.namespace}/${doc.metadata.name}`);
      }
    });
  }

  test("the validation bites: a wrong type is refused", () => {
    const [service] = build({}).filter((doc) => doc.kind === "Service");
    const broken = structuredClone(service) as any;
    broken.spec.template.spec.containers[0].ports[0].containerPort = "8080";
    assert.throws(() => new KnativeService(broken as never).validate());
  });
});

describe("manifests: the documents fit together", () => {
  for (const variant of VARIANTS) {
    const options = { ...DEFAULT_OPTIONS, ...variant };
    const docs = build(variant);
    const of = (kind: string) => docs.filter((doc) => doc.kind === kind);

    test(`${JSON.stringify(variant)}: sinks resolve; one source per watched namespace, all named job-pods, sending to the function's namespace`, () => {
      const sources = of("ApiServerSource");
      assert.deepEqual(sources.map((source) => source.metadata.namespace).sort(), [...options.watch].sort());
      for (const source of sources) {
        assert.equal(source.metadata.name, "job-pods", "the same name with or without a Broker, so one replaces the other");
        assert.equal(spec(source).mode, "Resource");
        assertResolves(docs, spec(source).sink, source.metadata.namespace!, `the source in ${source.metadata.namespace}`);
        if (spec(source).sink.ref !== undefined) assert.equal(spec(source).sink.ref.namespace, options.namespace);
      }
      for (const ping of of("PingSource")) assertResolves(docs, spec(ping).sink, ping.metadata.namespace!, "the sweep");
      for (const trigger of of("Trigger")) {
        assert.ok(find(docs, "eventing.knative.dev/v1", "Broker", spec(trigger).broker, trigger.metadata.namespace));
        assertResolves(docs, spec(trigger).subscriber, trigger.metadata.namespace!, "the Trigger's subscriber");
        assertResolves(docs, spec(trigger).delivery.deadLetterSink, trigger.metadata.namespace!, "the dead-letter sink");
        assert.ok(spec(trigger).delivery.retry >= 5);
      }
    });

    test(`${JSON.stringify(variant)}: every RoleBinding binds an account that exists to a Role that exists; each source may get, list and watch; the function may get, list and patch`, () => {
      for (const binding of of("RoleBinding")) {
        const subjects = binding.subjects as Array<{ kind: string; name: string; namespace: string }>;
        for (const subject of subjects) assert.ok(find(docs, "v1", "ServiceAccount", subject.name, subject.namespace), `ServiceAccount ${subject.namespace}/${subject.name}`);
        assert.ok(find(docs, "rbac.authorization.k8s.io/v1", "Role", (binding.roleRef as { name: string }).name, binding.metadata.namespace));
      }
      const grants = (account: string, accountNamespace: string, namespace: string) => {
        const binding = of("RoleBinding").find((doc) => doc.metadata.namespace === namespace && (doc.subjects as any[]).some((s) => s.name === account && s.namespace === accountNamespace));
        const role = binding && find(docs, "rbac.authorization.k8s.io/v1", "Role", (binding.roleRef as { name: string }).name, namespace);
        return (role?.rules as Array<{ verbs: string[] }> | undefined)?.[0]?.verbs;
      };
      for (const source of of("ApiServerSource")) {
        assert.deepEqual(grants(spec(source).serviceAccountName, source.metadata.namespace!, source.metadata.namespace!), ["get", "list", "watch"]);
        assert.equal(spec(source).serviceAccountName, SOURCE_ACCOUNT);
      }
      const fn = of("Service").find((doc) => doc.apiVersion === "serving.knative.dev/v1" && doc.metadata.name === "servo-k8s-multijob");
      if (fn !== undefined) {
        for (const watched of options.watch) assert.deepEqual(grants(spec(fn).template.spec.serviceAccountName, options.namespace, watched), ["get", "list", "patch"]);
      }
    });

    test(`${JSON.stringify(variant)}: the env is what the function reads, and a valid configuration watching exactly --watch; never its own namespace`, () => {
      for (const container of [...of("Deployment"), ...of("Service")].flatMap(containersOf)) {
        if (container.env === undefined) continue;
        const env: Record<string, string> = {};
        for (const variable of container.env) {
          assert.ok(KNOWN_VARIABLES.includes(variable.name), `the function does not read ${variable.name}`);
          assert.equal(typeof variable.value, "string", `${variable.name} is a plain value (the token is a file)`);
          env[variable.name] = variable.value;
        }
        // In a pod, the in-cluster configuration is there (the Knative Service mounts its token).
        const inCluster = { ...env, KUBERNETES_SERVICE_HOST: "10.96.0.1" };
        const config = loadConfig(inCluster, { kubernetes: container.name === "function", exists: () => true, readFile: () => "token-from-the-secret" });
        assert.deepEqual([...config.namespaces], [...options.watch]);
        assert.ok(!config.namespaces.has(options.namespace));
        assert.equal(config.dryRun, options.account === undefined);
      }
    });

    test(`${JSON.stringify(variant)}: secure defaults on every container: non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp, requests and a memory limit`, () => {
      for (const doc of [...of("Deployment"), ...of("Service")]) {
        for (const container of containersOf(doc)) {
          const context = container.securityContext;
          const podContext = doc.kind === "Deployment" ? spec(doc).template.spec.securityContext ?? {} : {};
          assert.equal(context.runAsNonRoot ?? podContext.runAsNonRoot, true);
          assert.equal(context.readOnlyRootFilesystem, true);
          assert.equal(context.allowPrivilegeEscalation, false);
          assert.deepEqual(context.capabilities, { drop: ["ALL"] });
          assert.equal((context.seccompProfile ?? podContext.seccompProfile)?.type, "RuntimeDefault");
          assert.ok(container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory, `${doc.metadata.name} resources`);
        }
      }
    });

    if (options.webhook) {
      test(`${JSON.stringify(variant)}: the webhook never blocks, is reached over HTTPS with a certificate for its Service, and leaves its own namespace alone`, () => {
        const [configuration] = of("MutatingWebhookConfiguration");
        const hook = (configuration!.webhooks as any[])[0];
        assert.deepEqual([hook.admissionReviewVersions, hook.sideEffects, hook.failurePolicy, hook.timeoutSeconds, hook.reinvocationPolicy], [["v1"], "NoneOnDryRun", "Ignore", 10, "Never"]);
        assert.deepEqual(hook.rules, [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }]);
        const { name, namespace, path, port } = hook.clientConfig.service;
        assert.deepEqual([path, port], ["/mutate", 443]);
        const service = find(docs, "v1", "Service", name, namespace)!;
        const deployment = of("Deployment").find((doc) => doc.metadata.name === name)!;
        const container = containersOf(deployment)[0];
        assert.deepEqual(container.args, ["webhook"]);
        const https = container.ports.find((p: { name: string }) => p.name === spec(service).ports[0].targetPort);
        assert.deepEqual([spec(service).ports[0].port, https.containerPort], [443, 8443]);
        assert.equal(spec(deployment).replicas, 2);
        assert.equal(container.readinessProbe.httpGet.scheme, "HTTPS");
        const pdb = find(docs, "policy/v1", "PodDisruptionBudget", name, namespace)!;
        assert.deepEqual(spec(pdb).selector.matchLabels, spec(deployment).selector.matchLabels);
        const [certificateNamespace, certificateName] = (configuration!.metadata.annotations as Record<string, string>)["cert-manager.io/inject-ca-from"]!.split("/");
        const certificate = find(docs, "cert-manager.io/v1", "Certificate", certificateName!, certificateNamespace)!;
        assert.deepEqual(spec(certificate).dnsNames, [`${name}.${namespace}.svc`]);
        assert.ok(find(docs, "cert-manager.io/v1", "Issuer", spec(certificate).issuerRef.name, certificateNamespace));
        const volume = spec(deployment).template.spec.volumes.find((v: { name: string }) => v.name === container.volumeMounts[0].name);
        assert.equal(volume.secret.secretName, spec(certificate).secretName);
        assert.equal(container.volumeMounts[0].mountPath, "/etc/webhook/tls");
        const watched: string[] = hook.namespaceSelector.matchExpressions[0].values;
        assert.deepEqual(watched, [...options.watch]);
        assert.ok(!watched.includes(namespace) && !watched.includes("kube-system"));
        const budget = loadConfig(Object.fromEntries(container.env.map((e: { name: string; value?: string }) => [e.name, e.value ?? "t"])), { kubernetes: false, readFile: () => "t" }).adjustBudgetMs;
        assert.ok(budget < hook.timeoutSeconds * 1000);
        // has(), not optional types: a new expression compiles with the previous release's CEL environment, which has them only from 1.29.
        // Any container, not only [0]: a mesh's injector (called before us) puts its proxy first.
        if (options.appId === DEFAULT_OPTIONS.appId) assert.equal(hook.matchConditions[0].expression, 'object.spec.containers.exists(c, has(c.env) && c.env.exists(e, e.name == "JOBID"))');
        else if (options.appId === "metadata/labels/app-id") assert.deepEqual([hook.matchConditions, hook.objectSelector], [undefined, { matchExpressions: [{ key: "app-id", operator: "Exists" }] }], "a label app id: an objectSelector");
      });
    }
  }
});

describe("manifests: only pods with the app id reach the webhook, whatever the app id path", () => {
  const hookOf = (appId: string) => (build({ webhook: true, appId }).find((doc) => doc.kind === "MutatingWebhookConfiguration") as any).webhooks[0];
  test("a label: an objectSelector (every Kubernetes release)", () => {
    // The path syntax splits on "/": a label key without a prefix.
    assert.deepEqual(hookOf("metadata/labels/optune-app").objectSelector, { matchExpressions: [{ key: "optune-app", operator: "Exists" }] });
    assert.equal(hookOf("/metadata/labels/app/").matchConditions, undefined);
  });
  test("an annotation: a CEL matchCondition on its key", () => {
    assert.deepEqual(hookOf("metadata/annotations/optune-app").matchConditions, [{ name: "has-app-id", expression: 'has(object.metadata.annotations) && "optune-app" in object.metadata.annotations' }]);
  });
  test("an env var of the first container by another key field: no filter, and the comment says every pod calls it", async () => {
    const hook = hookOf("spec/containers/0/env/[JOBID,k,v]");
    assert.deepEqual([hook.matchConditions, hook.objectSelector], [undefined, undefined]);
    const run = await runCli(["manifests", "--image", RELEASE.image, "--webhook", "--app-id", "spec/containers/1/env/[JOBID]"]);
    assert.match(run.stdout.replaceAll("\n# ", " "), /Every pod created in the watched namespaces calls it: no filter can be written for --app-id spec\/containers\/1\/env\/\[JOBID\]/);
  });
});

describe("manifests --event-auth: only the generated sources may speak, and they may reach the function", () => {
  const envOf = (variant: Partial<ManifestOptions>) => {
    const service = build(variant).find((doc) => doc.kind === "Service" && doc.apiVersion === "serving.knative.dev/v1") as any;
    return Object.fromEntries((service.spec.template.spec.containers[0].env as Array<{ name: string; value?: string }>).map((entry) => [entry.name, entry.value]));
  };
  test("direct: each watched namespace's ApiServerSource and the sweep's PingSource, as Knative names their OIDC service accounts", () => {
    assert.equal(
      envOf({ eventAuth: true, watch: ["batch", "etl"] }).OPTUNE_EVENT_SENDERS,
      "system:serviceaccount:batch:job-pods-oidc-sources.knative.dev-apiserversource,system:serviceaccount:etl:job-pods-oidc-sources.knative.dev-apiserversource,system:serviceaccount:optune-servo:servo-sweep-oidc-sources.knative.dev-pingsource",
    );
  });
  test("with a Broker: the Trigger that delivers, the PingSource, and an EventPolicy that lets the sources reach the Broker", () => {
    const docs = build({ eventAuth: true, broker: true, watch: ["batch", "etl"] });
    assert.equal(envOf({ eventAuth: true, broker: true, watch: ["batch", "etl"] }).OPTUNE_EVENT_SENDERS, "system:serviceaccount:optune-servo:servo-k8s-multijob-oidc-eventing.knative.dev-trigger,system:serviceaccount:optune-servo:servo-sweep-oidc-sources.knative.dev-pingsource");
    const policy = docs.find((doc) => doc.kind === "EventPolicy") as any;
    assert.deepEqual(policy.spec, {
      to: [{ ref: { apiVersion: "eventing.knative.dev/v1", kind: "Broker", name: "job-pods" } }],
      from: ["batch", "etl"].map((namespace) => ({ ref: { apiVersion: "sources.knative.dev/v1", kind: "ApiServerSource", name: "job-pods", namespace } })),
    });
    assert.equal(policy.metadata.namespace, "optune-servo");
    assert.equal(build({ broker: true }).some((doc) => doc.kind === "EventPolicy"), false, "no policy without OIDC");
  });
});

describe("manifests --target openfaas --openfaas-edition standard: the function has its own ServiceAccount, so the full guarantees", () => {
  const STANDARD: Partial<ManifestOptions> = { target: "openfaas", openfaasEdition: "standard", watch: ["batch", "etl"], account: "acme.example.com" };
  const docs = build(STANDARD);
  const account = find(docs, "v1", "ServiceAccount", "servo-k8s-multijob", "openfaas-fn");

  test("a ServiceAccount in openfaas-fn, which the stack names in com.openfaas.serviceaccount", () => {
    assert.ok(account);
    const stack = parse(readFileSync(join(REPOSITORY, "functions-standard.yml"), "utf8")) as { functions: Record<string, { annotations: Record<string, string>; environment: Record<string, string> }> };
    assert.equal(stack.functions["servo-k8s-multijob"]!.annotations["com.openfaas.serviceaccount"], "servo-k8s-multijob");
  });

  test("annotation claims: the ServiceAccount may get, list and patch pods in each watched namespace, and the stack leaves OPTUNE_DEDUPE to its default", () => {
    for (const watched of ["batch", "etl"]) {
      const binding = docs.find((doc) => doc.kind === "RoleBinding" && doc.metadata.namespace === watched && (doc.subjects as any[]).some((s) => s.name === "servo-k8s-multijob" && s.namespace === "openfaas-fn"));
      assert.ok(binding, watched);
      assert.deepEqual((find(docs, "rbac.authorization.k8s.io/v1", "Role", (binding.roleRef as { name: string }).name, watched)?.rules as any[])[0].verbs, ["get", "list", "patch"]);
    }
    const stack = parse(readFileSync(join(REPOSITORY, "functions-standard.yml"), "utf8")) as { functions: Record<string, { environment: Record<string, string> }> };
    assert.equal(stack.functions["servo-k8s-multijob"]!.environment.OPTUNE_DEDUPE, undefined);
  });

  test("the sweep: a PingSource every 5 minutes to the function on the gateway", () => {
    const ping = docs.find((doc) => doc.kind === "PingSource")!;
    assert.deepEqual([spec(ping).schedule, spec(ping).sink.uri], ["*/5 * * * *", "http://gateway.openfaas.svc.cluster.local:8080/function/servo-k8s-multijob"]);
  });

  test("--event-auth: every source asks a token for the function's audience, and its ServiceAccount may ask TokenReview", () => {
    const authenticated = build({ ...STANDARD, eventAuth: true });
    const audiences = authenticated.filter((doc) => doc.kind === "ApiServerSource" || doc.kind === "PingSource").map((doc) => spec(doc).sink.audience);
    assert.deepEqual(new Set(audiences), new Set([eventAudience({ ...DEFAULT_OPTIONS, ...STANDARD })]));
    const binding = authenticated.find((doc) => doc.kind === "ClusterRoleBinding")!;
    assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "servo-k8s-multijob", namespace: "openfaas-fn" }]);
  });

  test("CE stays as it was: no ServiceAccount, no sweep, and --event-auth refused", () => {
    const ce = build({ target: "openfaas" });
    assert.equal(ce.some((doc) => doc.kind === "ServiceAccount" && doc.metadata.namespace === "openfaas-fn"), false);
    assert.equal(ce.some((doc) => doc.kind === "PingSource"), false);
    assert.match(optionsProblem({ ...DEFAULT_OPTIONS, target: "openfaas", eventAuth: true }) ?? "", /OpenFaaS CE cannot give a function.*--openfaas-edition standard/);
  });

  test("from the command line; an edition without --target openfaas, or an unknown one, is refused", async () => {
    const run = await runCli(["manifests", "--target", "openfaas", "--openfaas-edition", "standard", "--watch", "batch"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /kind: PingSource/);
    assert.match((await runCli(["manifests", "--openfaas-edition", "standard"])).stderr, /--openfaas-edition applies to --target openfaas/);
    assert.match((await runCli(["manifests", "--target", "openfaas", "--openfaas-edition", "pro"])).stderr, /--openfaas-edition must be ce or standard/);
  });
});

describe("manifests: the function knows how long its event source retries", () => {
  const envOf = (variant: Partial<ManifestOptions>) => {
    const service = build(variant).find((doc) => doc.kind === "Service" && doc.apiVersion === "serving.knative.dev/v1") as any;
    return service.spec.template.spec.containers[0].env as Array<{ name: string; value?: string }>;
  };
  test("behind the generated Broker: the Trigger's ~17 minutes (1 + 2 + ... + 512 s), so failures are answered 503", () => {
    assert.deepEqual(envOf({ broker: true }).find((entry) => entry.name === "OPTUNE_SOURCE_RETRY_WINDOW"), { name: "OPTUNE_SOURCE_RETRY_WINDOW", value: "1023" });
  });
  test("a direct sink: the default, the adapter's ~3 s", () => {
    assert.equal(envOf({}).find((entry) => entry.name === "OPTUNE_SOURCE_RETRY_WINDOW"), undefined);
  });
});

describe("manifests: Prometheus can scrape every server", () => {
  for (const variant of VARIANTS.filter((v) => v.podMonitor === true)) {
    test(JSON.stringify(variant), () => {
      const docs = build(variant);
      for (const monitor of docs.filter((doc) => doc.kind === "PodMonitor")) {
        const { selector, podMetricsEndpoints, namespaceSelector } = spec(monitor);
        const [endpoint] = podMetricsEndpoints;
        assert.equal(endpoint.path, "/metrics");
        if (namespaceSelector !== undefined) {
          assert.deepEqual([namespaceSelector.matchNames, selector.matchLabels, endpoint.targetPort], [["openfaas-fn"], { faas_function: "servo-k8s-multijob" }, 8080]);
          continue;
        }
        // The pods it selects, in its namespace, have a port of that name.
        const pods = docs.filter((doc) => doc.metadata.namespace === monitor.metadata.namespace && (doc.kind === "Deployment" || doc.apiVersion === "serving.knative.dev/v1"));
        const selected = pods.filter((doc) =>
          doc.kind === "Deployment"
            ? Object.entries(selector.matchLabels).every(([key, wanted]) => spec(doc).template.metadata.labels?.[key] === wanted)
            : selector.matchLabels["serving.knative.dev/service"] === doc.metadata.name,
        );
        assert.equal(selected.length, 1, `${monitor.metadata.name} selects one workload`);
        // A Knative Service's pods carry the user container's port as user-port, whatever the Service calls it (test/cluster/monitoring.test.ts renders them).
        if (selected[0]!.apiVersion === "serving.knative.dev/v1") assert.equal(endpoint.port, "user-port");
        else assert.ok(containersOf(selected[0]!)[0].ports.some((port: { name?: string }) => port.name === endpoint.port), `port ${endpoint.port}`);
      }
      for (const doc of docs.filter((d) => d.kind === "Deployment" || d.apiVersion === "serving.knative.dev/v1")) {
        if (doc.metadata.name === "servo-dead-letters") continue;
        assert.equal(spec(doc).template.metadata.annotations["prometheus.io/scrape"], "true", `${doc.metadata.name} carries the scrape annotations`);
      }
    });
  }
});

describe("manifests: example/ is what the generator prints", () => {
  for (const { file, args } of EXAMPLES) {
    test(`${file} = manifests ${args.join(" ")}`, async () => {
      assert.equal(readFileSync(join(REPOSITORY, file), "utf8"), await renderExample(args), `regenerate with npm run examples`);
      const parsed = parseAllDocuments(readFileSync(join(REPOSITORY, file), "utf8"));
      assert.deepEqual(parsed.map((doc) => doc.toJS()), manifests(exampleOptions(args)).map((documented) => documented.manifest));
    });
  }
});

describe("manifests: options that cannot work are refused", () => {
  for (const [variant, message] of [
    [{ namespace: "default" }, /^--namespace default is shared with the platform or other workloads/],
    [{ namespace: "batch", watch: ["batch"] }, /^--namespace batch is also watched: the function would watch its own pods/],
    [{ watch: ["batch", "optune-servo"] }, /is also watched/],
    [{ watch: ["Batch"] }, /^--watch: "Batch" is not a namespace name$/],
    [{ watch: ["batch", "batch"] }, /names a namespace twice/],
    [{ selector: "a b c" }, /^--selector "a b c" is not a label selector/],
    [{ image: "my image" }, /^--image must be an image reference \(letters, digits and \. _ \/ : @ \+ -\)/],
  ] as const) {
    test(JSON.stringify(variant), () => {
      const options = { ...TEST_OPTIONS, ...variant };
      assert.match(optionsProblem(options) ?? imageProblem(options, options.image) ?? "", message);
    });
  }

  test("from the command line: exit 2 and the reason", async () => {
    const run = await runCli(["manifests", "--namespace", "default"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^servo-k8s-multijob manifests: --namespace default is shared with the platform/);
    const bad = await runCli(["manifests", "--image", RELEASE.image, "--account", "two words"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^servo-k8s-multijob manifests: --account must be a non-empty account name without spaces/);
  });

  test("label selectors as kubectl writes them", () => {
    assert.deepEqual(parseSelector("batch.kubernetes.io/job-name"), { matchExpressions: [{ key: "batch.kubernetes.io/job-name", operator: "Exists" }] });
    assert.deepEqual(parseSelector("team=ml,tier!=test,!legacy,env in (prod, stage)"), {
      matchLabels: { team: "ml" },
      matchExpressions: [
        { key: "tier", operator: "NotIn", values: ["test"] },
        { key: "legacy", operator: "DoesNotExist" },
        { key: "env", operator: "In", values: ["prod", "stage"] },
      ],
    });
    for (const bad of ["", "=x", "a=b c", "env in prod"]) assert.equal(parseSelector(bad), undefined, bad);
  });
});

describe("manifests: every image tagged, and the header says how to undo it", () => {
  test("every container image has a tag (the dead-letter sink is our own image, run as dead-letters)", () => {
    for (const variant of VARIANTS) {
      for (const doc of build(variant)) {
        const containers = ((doc.spec as any)?.template?.spec?.containers ?? []) as Array<{ image: string; args?: string[] }>;
        for (const container of containers) assert.match(container.image, /:[\w][\w.-]{0,127}$|@sha256:[0-9a-f]{64}$/, `${doc.kind} ${doc.metadata.name}: ${container.image}`);
      }
    }
    const sink = build({ broker: true }).find((doc) => doc.kind === "Deployment" && doc.metadata.name === "servo-dead-letters") as any;
    assert.equal(sink.spec.template.spec.containers[0].image, RELEASE.image);
    assert.deepEqual(sink.spec.template.spec.containers[0].args, ["dead-letters"]);
  });

  test("the header: apply keeping a copy, prune on upgrade, remove by label without the install flags", async () => {
    const run = await runCli(["manifests", "--target", "openfaas", "--watch", "batch"]);
    assert.equal(run.code, 0, run.stderr);
    const header = run.stdout.split("\n").slice(0, 4);
    assert.deepEqual(header.slice(0, 3), [
      "# Generated by: servo-k8s-multijob manifests --watch batch --target openfaas",
      "# Apply with:   servo-k8s-multijob manifests --watch batch --target openfaas | tee servo.yaml | kubectl apply -f -",
      "#   then, on an upgrade, what the new flags no longer make: servo-k8s-multijob uninstall --keep servo.yaml | kubectl delete -f -",
    ]);
    assert.match(header[3]!, /^# Remove with:  servo-k8s-multijob uninstall \| kubectl delete -f -   \(finds every object by its label app\.kubernetes\.io\/part-of=servo-k8s-multijob; the function itself: faas-cli remove -f functions\.yml\)$/);
    const knative = await runCli(["manifests", "--image", RELEASE.image]);
    assert.match(knative.stdout.split("\n")[3]!, /; keeps the namespace optune-servo and the token Secret\)$/);
  });

  test("the version the documentation names is the package's", () => {
    for (const file of ["README.md", "functions.yml"]) {
      const named = [...readFileSync(join(REPOSITORY, file), "utf8").matchAll(/servo-k8s-multijob:(\d+\.\d+\.\d+)/g)].map((match) => match[1]);
      assert.ok(named.length > 0, file);
      assert.deepEqual([...new Set(named)].filter((version) => version !== PACKAGE_VERSION), [], file);
    }
  });
});

describe("manifests: every object says what it is part of (the recommended app.kubernetes.io labels)", () => {
  const COMPONENTS = ["function", "event-source", "event-delivery", "webhook", "monitoring", "namespace"];
  for (const variant of VARIANTS) {
    test(`${JSON.stringify(variant)}: name, instance, version, component, part-of, managed-by on each`, () => {
      const options = { ...TEST_OPTIONS, ...variant };
      for (const doc of build(variant)) {
        const labels = (doc.metadata.labels ?? {}) as Record<string, string>;
        const what = `${doc.kind} ${doc.metadata.namespace ?? ""}/${doc.metadata.name}`;
        assert.ok(["servo-k8s-multijob", "servo-k8s-multijob-webhook", "servo-dead-letters"].includes(labels["app.kubernetes.io/name"]!), what);
        assert.equal(labels["app.kubernetes.io/instance"], options.namespace, what);
        assert.equal(labels["app.kubernetes.io/version"], PACKAGE_VERSION, what);
        assert.ok(COMPONENTS.includes(labels["app.kubernetes.io/component"]!), `${what}: component ${labels["app.kubernetes.io/component"]}`);
        assert.equal(labels["app.kubernetes.io/part-of"], "servo-k8s-multijob", what);
        assert.equal(labels["app.kubernetes.io/managed-by"], "servo-k8s-multijob", what);
      }
    });
  }

  test("the components: sources, delivery, webhook and monitoring apart from the function", () => {
    const docs = build({ webhook: true, broker: true, podMonitor: true, prometheusRules: true, watch: ["batch"] });
    const component = (kind: string, name: string) => (docs.find((doc) => doc.kind === kind && doc.metadata.name === name)!.metadata.labels as Record<string, string>)["app.kubernetes.io/component"];
    assert.deepEqual(
      [component("ApiServerSource", "job-pods"), component("Trigger", "servo-k8s-multijob"), component("Deployment", "servo-dead-letters"), component("MutatingWebhookConfiguration", "servo-k8s-multijob"), component("PrometheusRule", "servo-k8s-multijob"), component("Service", "servo-k8s-multijob")],
      ["event-source", "event-delivery", "event-delivery", "webhook", "monitoring", "function"],
    );
  });

  test("a Deployment's selector and pod labels stay as they were (a selector cannot change on upgrade)", () => {
    const webhook = build({ webhook: true }).find((doc) => doc.kind === "Deployment") as any;
    assert.deepEqual(webhook.spec.selector.matchLabels, { "app.kubernetes.io/name": "servo-k8s-multijob-webhook" });
    assert.deepEqual(webhook.spec.template.metadata.labels, { "app.kubernetes.io/name": "servo-k8s-multijob-webhook" });
    assert.equal(webhook.metadata.labels["app.kubernetes.io/name"], "servo-k8s-multijob-webhook", "an object that names itself keeps its name");
  });
});

describe("manifests --image: no placeholder", () => {
  test("without --image: exit 2, and the message names --image and how to build one", async () => {
    const run = await runCli(["manifests", "--watch", "batch"]);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /^servo-k8s-multijob manifests: --image is required: the image you built and pushed \(docker build -t /);
  });

  test("with --image: that image everywhere, and the header's command names it", async () => {
    const run = await runCli(["manifests", "--image", RELEASE.image, "--watch", "batch", "--broker"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^# Generated by: servo-k8s-multijob manifests --watch batch --image ${RELEASE.image.replaceAll(".", "\\.")} --broker\\n`));
    const images = [...run.stdout.matchAll(/image: (\S+)/g)].map((match) => match[1]);
    assert.deepEqual([...new Set(images)], [RELEASE.image]);
  });
});

describe("uninstall and upgrade: found by label, whatever the flags", () => {
  const refsOf = (docs: readonly Manifest[]): ObjectRef[] =>
    docs.filter((doc) => doc.kind !== "Namespace").map((doc) => ({ apiVersion: doc.apiVersion, kind: doc.kind, name: doc.metadata.name, ...(doc.metadata.namespace === undefined ? {} : { namespace: doc.metadata.namespace }) }));
  /** What the API server would list for the kinds uninstall asks for, from what was applied. */
  const listed = (docs: readonly Manifest[]) => INSTALLED_KINDS.flatMap((kind) => objectsOf(kind, { items: docs.filter((doc) => doc.apiVersion === kind.apiVersion && doc.kind === kind.kind) }).found);

  test("uninstall asks for every kind manifests writes, but Namespace (it keeps the token Secret)", () => {
    const written = new Set(VARIANTS.flatMap((variant) => build(variant)).map((doc) => `${doc.apiVersion}/${doc.kind}`));
    const asked = new Set(INSTALLED_KINDS.map((kind) => `${kind.apiVersion}/${kind.kind}`));
    assert.deepEqual([...written].filter((kind) => !asked.has(kind)), ["v1/Namespace"]);
    assert.deepEqual([...asked].filter((kind) => !written.has(kind)), []);
  });

  test("everything an install wrote is found, without its flags", () => {
    const docs = build({ webhook: true, broker: true, podMonitor: true, prometheusRules: true, eventAuth: true, account: "acme.example.com", watch: ["batch", "etl"] });
    assert.deepEqual(listed(docs).map((ref) => `${ref.kind} ${ref.namespace}/${ref.name}`).sort(), refsOf(docs).map((ref) => `${ref.kind} ${ref.namespace}/${ref.name}`).sort());
  });

  test("--watch batch,etl then --watch batch: what is left to delete is etl's objects, all of them, and nothing else", () => {
    for (const variant of [{}, { webhook: true, account: "acme.example.com" }, { target: "openfaas" as const }]) {
      const before = build({ ...variant, watch: ["batch", "etl"] });
      const after = build({ ...variant, watch: ["batch"] });
      const stale = toDelete(listed(before), refsOf(after));
      assert.deepEqual(stale.map((ref) => `${ref.kind} ${ref.name}`).sort(), refsOf(before.filter((doc) => doc.metadata.namespace === "etl")).map((ref) => `${ref.kind} ${ref.name}`).sort(), JSON.stringify(variant));
      assert.ok(stale.every((ref) => ref.namespace === "etl"));
      for (const kind of ["Role", "RoleBinding", "ServiceAccount", "ApiServerSource"]) assert.ok(stale.some((ref) => ref.kind === kind), `${JSON.stringify(variant)}: etl's ${kind}`);
    }
  });

  test("an object not labelled ours, or with a name that is no Kubernetes name, is never printed", () => {
    const kind = INSTALLED_KINDS.find((candidate) => candidate.kind === "Role")!;
    const ours = { "app.kubernetes.io/part-of": "servo-k8s-multijob" };
    const { found, unnamed } = objectsOf(kind, { items: [{ metadata: { name: "theirs", namespace: "batch" } }, { metadata: { name: "x\n- evil", namespace: "batch", labels: ours } }, { metadata: { name: "mine", namespace: "batch", labels: ours } }] });
    assert.deepEqual([found, unnamed], [[{ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", name: "mine", namespace: "batch" }], 1]);
  });

  test("the output deletes the webhook's configuration first, parses as the objects, and says what it keeps", () => {
    const docs = build({ webhook: true, watch: ["batch"] });
    const text = renderUninstall(toDelete(listed(docs)), false);
    const parsed = parseAllDocuments(text).map((document) => document.toJS());
    assert.equal(parsed[0].kind, "MutatingWebhookConfiguration");
    assert.equal(parsed.length, refsOf(docs).length);
    assert.match(text, /^# Kept: the servo's namespace and the Optune token Secret in it/m);
  });

  test("uninstall without a kubeconfig: exit 2, and it says so", async () => {
    const run = await runCli(["uninstall"], { KUBECONFIG: join(REPOSITORY, "no-such-kubeconfig"), HOME: join(REPOSITORY, "no-such-home") });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /no Kubernetes configuration/);
  });
});

describe("manifests: the Optune token is a file from the Secret, followed on rotation", () => {
  for (const variant of [{ account: "acme.example.com" }, { account: "acme.example.com", webhook: true }, { account: "acme.example.com", webhook: true, target: "openfaas" as const }]) {
    test(`${JSON.stringify(variant)}: each container that sends to Optune mounts the Secret read-only and reads OPTUNE_AUTH_TOKEN_FILE from it`, () => {
      const docs = build(variant);
      const pods = docs.filter((doc) => doc.kind === "Deployment" || doc.apiVersion === "serving.knative.dev/v1").filter((doc) => doc.metadata.name !== "servo-dead-letters");
      assert.ok(pods.length > 0);
      for (const doc of pods) {
        const pod = spec(doc).template.spec;
        const container = pod.containers[0];
        const env = Object.fromEntries(container.env.map((entry: { name: string; value: string }) => [entry.name, entry.value]));
        assert.equal(env.OPTUNE_AUTH_TOKEN, undefined, `${doc.metadata.name}: no token in the environment`);
        assert.equal(env.OPTUNE_AUTH_TOKEN_FILE, `${TOKEN_DIRECTORY}/token`);
        const mount = container.volumeMounts.find((candidate: { mountPath: string }) => candidate.mountPath === TOKEN_DIRECTORY);
        assert.equal(mount.readOnly, true);
        const volume = pod.volumes.find((candidate: { name: string }) => candidate.name === mount.name);
        assert.deepEqual(volume.secret, { secretName: DEFAULT_OPTIONS.tokenSecret, items: [{ key: "token", path: "token" }] });
      }
    });
  }

  test("dry (no --account): no token, no volume", () => {
    const service = build({}).find((doc) => doc.apiVersion === "serving.knative.dev/v1") as any;
    assert.equal(service.spec.template.spec.volumes, undefined);
    assert.equal(service.spec.template.spec.containers[0].volumeMounts, undefined);
  });
});

describe("manifests: a NetworkPolicy for every server", () => {
  const selects = (policy: Manifest, doc: Manifest) =>
    policy.metadata.namespace === doc.metadata.namespace && Object.entries(spec(policy).podSelector.matchLabels as Record<string, string>).every(([key, value]) => spec(doc).template.metadata.labels?.[key] === value);

  test("each Deployment's pods are selected by a policy in their namespace", () => {
    const docs = build({ webhook: true, broker: true, account: "acme.example.com" });
    const policies = docs.filter((doc) => doc.kind === "NetworkPolicy");
    for (const deployment of docs.filter((doc) => doc.kind === "Deployment")) assert.ok(policies.some((policy) => selects(policy, deployment)), deployment.metadata.name);
  });

  test("the webhook: HTTPS on 8443 only, from anywhere (the API server's addresses are no pod's)", () => {
    const policy = build({ webhook: true }).find((doc) => doc.kind === "NetworkPolicy" && doc.metadata.name === "servo-k8s-multijob-webhook")!;
    assert.deepEqual(spec(policy).ingress, [{ ports: [{ protocol: "TCP", port: 8443 }] }]);
  });

  test("the dead-letter sink: only from knative-eventing, on 8080", () => {
    const policy = build({ broker: true }).find((doc) => doc.kind === "NetworkPolicy" && doc.metadata.name === "servo-dead-letters")!;
    assert.deepEqual(spec(policy).ingress, [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "knative-eventing" } } }], ports: [{ protocol: "TCP", port: 8080 }] }]);
  });
});

describe("manifests --webhook: available through a node's loss and a certificate's renewal", () => {
  const docs = build({ webhook: true });
  const find2 = (kind: string, name: string) => docs.find((doc) => doc.kind === kind && doc.metadata.name === name)!;

  test("its replicas spread over nodes (required) and zones (preferred)", () => {
    const deployment = find2("Deployment", "servo-k8s-multijob-webhook");
    const constraints = spec(deployment).template.spec.topologySpreadConstraints;
    assert.deepEqual(constraints.map((c: any) => [c.topologyKey, c.whenUnsatisfiable, c.maxSkew]), [["kubernetes.io/hostname", "DoNotSchedule", 1], ["topology.kubernetes.io/zone", "ScheduleAnyway", 1]]);
    for (const constraint of constraints) assert.deepEqual(constraint.labelSelector.matchLabels, spec(deployment).template.metadata.labels);
  });

  test("a CA chain: self-signed root → CA Certificate → CA Issuer → the serving certificate the caBundle is injected from", () => {
    const configuration = find2("MutatingWebhookConfiguration", "servo-k8s-multijob");
    const leafName = (configuration.metadata.annotations as Record<string, string>)["cert-manager.io/inject-ca-from"]!.split("/")[1]!;
    const leaf = find2("Certificate", leafName);
    const caIssuer = find2("Issuer", spec(leaf).issuerRef.name);
    assert.ok(spec(caIssuer).ca, "the serving certificate's issuer is a CA Issuer");
    const ca = docs.find((doc) => doc.kind === "Certificate" && spec(doc).secretName === spec(caIssuer).ca.secretName)!;
    assert.equal(spec(ca).isCA, true);
    assert.deepEqual(spec(find2("Issuer", spec(ca).issuerRef.name)), { selfSigned: {} });
    assert.notEqual(spec(ca).secretName, spec(leaf).secretName);
  });
});

describe("monitoring: labels for Prometheus' selectors, and runbooks that exist", () => {
  test("--monitoring-label (repeatable) lands on the PodMonitors and the PrometheusRule, and nowhere else", async () => {
    const run = await runCli(["manifests", "--image", RELEASE.image, "--pod-monitor", "--prometheus-rules", "--monitoring-label", "release=kube-prometheus-stack", "--monitoring-label", "team=ops"]);
    assert.equal(run.code, 0, run.stderr);
    const docs = parseAllDocuments(run.stdout).map((document) => document.toJS() as Manifest);
    for (const doc of docs) {
      const labels = (doc.metadata.labels ?? {}) as Record<string, string>;
      const monitoring = doc.kind === "PodMonitor" || doc.kind === "PrometheusRule";
      assert.deepEqual([labels.release, labels.team], monitoring ? ["kube-prometheus-stack", "ops"] : [undefined, undefined], `${doc.kind} ${doc.metadata.name}`);
    }
    assert.match(run.stdout, /--monitoring-label release=kube-prometheus-stack --monitoring-label team=ops/);
  });

  test("a --monitoring-label that is not KEY=VALUE, or not a label: exit 2", async () => {
    for (const bad of ["release", "release=two words", "-x=y"]) {
      const run = await runCli(["manifests", "--image", RELEASE.image, "--monitoring-label", bad]);
      assert.equal(run.code, 2, bad);
      assert.match(run.stderr, /--monitoring-label/);
    }
  });

  test("every alert's runbook_url points at a heading of docs/operations.md", () => {
    const readme = readFileSync(join(REPOSITORY, "docs/operations.md"), "utf8");
    // GitHub's anchors: the heading's text in lower case, punctuation but - and _ dropped, spaces as -.
    const anchors = new Set([...readme.matchAll(/^#{1,6} (.+)$/gm)].map((match) => match[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-")));
    for (const rule of alertRules(DEFAULT_OPTIONS)) {
      const [file, anchor] = rule.annotations!.runbook_url!.split("#");
      assert.equal(file, "docs/operations.md");
      assert.ok(anchors.has(anchor!), `${rule.alert}: no heading for #${anchor}`);
    }
  });
});
