// What deploys the function: the Dockerfile's runtime stage (run here without Docker), the
// OpenFaaS stack file, and the Kubernetes manifests in example/.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { KNOWN_VARIABLES, loadConfig } from "../handler/config.js";
import { collect, listening, REPOSITORY } from "./support/cli.js";

const run = promisify(execFile);

/** The instructions of the last stage of a Dockerfile (the runtime image), joined across line continuations. */
function runtimeStage(dockerfile: string): Array<{ instruction: string; args: string }> {
  const lines = dockerfile.replace(/\\\n/g, " ").split("\n").map((line) => line.trim()).filter((line) => line !== "" && !line.startsWith("#"));
  const stages: Array<Array<{ instruction: string; args: string }>> = [];
  for (const line of lines) {
    const [instruction = "", ...rest] = line.split(/\s+/);
    if (instruction.toUpperCase() === "FROM") stages.push([]);
    stages.at(-1)?.push({ instruction: instruction.toUpperCase(), args: rest.join(" ") });
  }
  return stages.at(-1) ?? [];
}

describe("Dockerfile", () => {
  const dockerfile = readFileSync(join(REPOSITORY, "Dockerfile"), "utf8");
  const stage = runtimeStage(dockerfile);
  const args = (instruction: string) => stage.filter((step) => step.instruction === instruction).map((step) => step.args);

  test("is multi-stage; the runtime runs as a non-root user and exposes 8080", () => {
    assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2);
    assert.deepEqual(args("USER"), ["node"]);
    assert.deepEqual(args("EXPOSE"), ["8080"]);
    assert.match(args("RUN").join(" "), /npm ci --omit=dev/);
  });

  test("what the runtime stage does — production dependencies plus the build output — starts and answers /healthz", { timeout: 180_000 }, async () => {
    const image = mkdtempSync(join(tmpdir(), "servo-image-"));
    try {
      // COPY package.json package-lock.json ./ and RUN npm ci --omit=dev …, as the stage says.
      for (const copy of args("COPY").filter((copy) => !copy.startsWith("--from"))) {
        for (const file of copy.split(/\s+/).slice(0, -1)) cpSync(join(REPOSITORY, file), join(image, file));
      }
      const install = args("RUN").flatMap((command) => command.split("&&")).map((part) => part.trim()).find((part) => part.startsWith("npm ci"));
      assert.ok(install, "the runtime stage installs with npm ci");
      await run("sh", ["-c", `${install} --prefer-offline`], { cwd: image });
      // COPY --from=build /app/dist/handler ./dist/handler
      const [source, target] = args("COPY").find((copy) => copy.startsWith("--from=build"))!.split(/\s+/).slice(1);
      cpSync(join(REPOSITORY, source!.replace(/^\/app\//, "")), join(image, target!), { recursive: true });

      assert.ok(!existsSync(join(image, "node_modules", "typescript")), "no dev dependencies in the image");
      assert.ok(!existsSync(join(image, "node_modules", "cloudevents")), "no dev dependencies in the image");

      const command = [...(JSON.parse(args("ENTRYPOINT")[0]!) as string[]), ...(JSON.parse(args("CMD")[0]!) as string[])];
      assert.deepEqual(command, ["node", "dist/handler/cli.js", "serve"]);
      const child = spawn(process.execPath, command.slice(1), { cwd: image, env: { PATH: process.env.PATH ?? "", PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
      const done = collect(child);
      const port = await listening(child);
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(response.status, 200);
      child.kill("SIGTERM");
      assert.equal((await done).code, 0);
    } finally {
      rmSync(image, { recursive: true, force: true });
    }
  });
});

describe("functions.yml (OpenFaaS)", () => {
  const text = readFileSync(join(REPOSITORY, "functions.yml"), "utf8");
  const stack = parse(text) as {
    version: unknown;
    provider: Record<string, unknown>;
    functions: Record<string, Record<string, unknown>>;
  };
  const [name, fn] = Object.entries(stack.functions)[0]!;
  // faas-cli ignores keys it does not know, so a typo would deploy silently without its setting.
  const FUNCTION_KEYS = ["lang", "handler", "image", "environment", "environment_file", "secrets", "labels", "annotations", "limits", "requests", "constraints", "readonly_root_filesystem", "build_args", "namespace"];

  test("is a 1.0 stack file for the openfaas provider with one function", () => {
    assert.match(text, /^version: 1\.0$/m); // YAML reads 1.0 as a number; faas-cli reads the text
    assert.equal(stack.version, 1);
    assert.equal(stack.provider.name, "openfaas");
    assert.match(String(stack.provider.gateway), /^https?:\/\//);
    assert.equal(name, "servo-k8s-multijob");
  });

  test("builds the root Dockerfile (lang dockerfile, handler .) and uses only keys faas-cli knows", () => {
    assert.equal(fn.lang, "dockerfile");
    assert.equal(fn.handler, ".");
    assert.ok(existsSync(join(REPOSITORY, String(fn.handler), "Dockerfile")));
    assert.match(String(fn.image), /servo-k8s-multijob:/);
    for (const key of Object.keys(fn)) assert.ok(FUNCTION_KEYS.includes(key), `unknown function key ${key}`);
  });

  test("its environment is a valid configuration that reads the token from the mounted secret", () => {
    const environment = fn.environment as Record<string, string>;
    for (const variable of Object.keys(environment)) assert.ok(KNOWN_VARIABLES.includes(variable), `the function does not read ${variable}`);
    const secrets = fn.secrets as string[];
    assert.equal(environment.OPTUNE_AUTH_TOKEN_FILE, `/var/openfaas/secrets/${secrets[0]}`);
    const read: string[] = [];
    const config = loadConfig(environment, { readFile: (path) => (read.push(path), "token-from-secret\n") });
    assert.deepEqual(read, [environment.OPTUNE_AUTH_TOKEN_FILE]);
    assert.equal(config.authToken, "token-from-secret");
    assert.equal(config.dryRun, false);
    assert.equal(config.dedupe, "memory", "OpenFaaS CE gives functions no ServiceAccount to claim with");
  });
});

describe("Kubernetes manifests in example/", () => {
  const yamlFiles = (dir: string): string[] =>
    readdirSync(dir).flatMap((entry) => {
      const path = join(dir, entry);
      return statSync(path).isDirectory() ? yamlFiles(path) : /\.ya?ml$/.test(entry) ? [path] : [];
    });
  type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, any>; rules?: any[]; subjects?: any[]; roleRef?: any };
  const documents = new Map<string, Doc[]>();
  for (const file of yamlFiles(join(REPOSITORY, "example"))) {
    const parsed = parseAllDocuments(readFileSync(file, "utf8"));
    documents.set(file.slice(REPOSITORY.length), parsed.map((doc) => (doc.errors.length > 0 ? { errors: doc.errors } : doc.toJS())) as Doc[]);
  }
  const all = [...documents.values()].flat();
  const ofKind = (kind: string) => all.filter((doc) => doc.kind === kind);

  test("every file is valid YAML of Kubernetes objects", () => {
    assert.ok(documents.size >= 6, [...documents.keys()].join(", "));
    for (const [file, docs] of documents) {
      for (const doc of docs) {
        assert.ok(!("errors" in doc), `${file}: ${JSON.stringify(doc)}`);
        assert.ok(doc.apiVersion && doc.kind && doc.metadata?.name, `${file}: apiVersion, kind and metadata.name`);
      }
    }
  });

  test("each ApiServerSource sends whole Pods (Resource mode) with an account that may get, list and watch pods", () => {
    const sources = ofKind("ApiServerSource");
    assert.ok(sources.length >= 3);
    for (const source of sources) {
      assert.equal(source.apiVersion, "sources.knative.dev/v1");
      assert.equal(source.spec?.mode, "Resource");
      assert.deepEqual(source.spec?.resources, [{ apiVersion: "v1", kind: "Pod" }]);
      assertGrants(source.spec?.serviceAccountName, ["get", "list", "watch"]);
    }
  });

  test("the OpenFaaS source sinks to the function on the gateway", () => {
    const source = documents.get("example/openfaas/apiserversource.yaml")?.[0];
    assert.equal(source?.spec?.sink.uri, "http://gateway.openfaas.svc.cluster.local:8080/function/servo-k8s-multijob");
  });

  test("the Knative Service passes a valid configuration and takes the token from a Secret", () => {
    const service = ofKind("Service").find((doc) => doc.metadata.name === "servo-k8s-multijob")!;
    const container = service.spec?.template.spec.containers[0];
    const env: Record<string, string> = {};
    for (const variable of container.env) {
      assert.ok(KNOWN_VARIABLES.includes(variable.name), `the function does not read ${variable.name}`);
      env[variable.name] = variable.value ?? "from-a-secret";
    }
    assert.deepEqual(container.env.find((variable: { name: string }) => variable.name === "OPTUNE_AUTH_TOKEN").valueFrom, { secretKeyRef: { name: "optune-auth-token", key: "token" } });
    assert.equal(loadConfig(env).dryRun, false);
    assert.equal(container.readinessProbe.httpGet.path, "/readyz");
    assert.equal(service.spec?.template.spec.serviceAccountName, "servo-k8s-multijob");
  });

  test("the Broker variant retries with backoff and dead-letters to a sink that exists", () => {
    const trigger = ofKind("Trigger")[0]!;
    const { delivery } = trigger.spec!;
    assert.ok(delivery.retry >= 5);
    assert.equal(delivery.backoffPolicy, "exponential");
    assert.match(delivery.backoffDelay, /^PT\d+S$/);
    assert.ok(ofKind("Service").some((doc) => doc.metadata.name === delivery.deadLetterSink.ref.name));
    assert.equal(trigger.spec?.subscriber.ref.name, "servo-k8s-multijob");
  });

  test("a PingSource asks the function for a sweep every 5 minutes", () => {
    const [ping] = ofKind("PingSource");
    assert.equal(ping?.apiVersion, "sources.knative.dev/v1");
    assert.equal(ping?.spec?.schedule, "*/5 * * * *");
    assert.equal(ping?.spec?.sink.ref.name, "servo-k8s-multijob");
  });

  test("svc-acct.yaml and svc-role.yaml give the function exactly get, list and patch on pods", () => {
    assertGrants("servo-k8s-multijob", ["get", "list", "patch"]);
  });

  test("the webhook: 2 replicas behind a PDB, HTTPS 443 → 8443, a cert-manager certificate for <svc>.<ns>.svc, and a webhook that never blocks", () => {
    const [webhooks] = ofKind("MutatingWebhookConfiguration") as Array<Doc & { webhooks: any[]; metadata: { annotations: Record<string, string> } }>;
    const hook = webhooks!.webhooks[0];
    assert.deepEqual(
      [hook.admissionReviewVersions, hook.sideEffects, hook.failurePolicy, hook.timeoutSeconds, hook.reinvocationPolicy],
      [["v1"], "NoneOnDryRun", "Ignore", 10, "Never"],
    );
    assert.deepEqual(hook.rules, [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }]);
    const { name, namespace, path, port } = hook.clientConfig.service;
    assert.deepEqual([path, port], ["/mutate", 443]);
    const service = ofKind("Service").find((doc) => doc.apiVersion === "v1" && doc.metadata.name === name && doc.metadata.namespace === namespace)!;
    assert.ok(service, "the webhook's Service exists");
    const deployment = ofKind("Deployment").find((doc) => doc.metadata.name === name)!;
    const container = deployment.spec!.template.spec.containers[0];
    assert.deepEqual(container.args, ["webhook"]);
    const https = container.ports.find((p: { name: string }) => p.name === service.spec!.ports[0].targetPort);
    assert.deepEqual([service.spec!.ports[0].port, https.containerPort], [443, 8443]);
    assert.equal(deployment.spec!.replicas, 2);
    assert.equal(container.readinessProbe.httpGet.scheme, "HTTPS");
    const pdb = ofKind("PodDisruptionBudget").find((doc) => doc.metadata.namespace === namespace)!;
    assert.deepEqual(pdb.spec!.selector.matchLabels, deployment.spec!.selector.matchLabels);

    const [certificateNamespace, certificateName] = webhooks!.metadata.annotations["cert-manager.io/inject-ca-from"]!.split("/");
    const certificate = ofKind("Certificate").find((doc) => doc.metadata.namespace === certificateNamespace && doc.metadata.name === certificateName)!;
    assert.deepEqual(certificate.spec!.dnsNames, [`${name}.${namespace}.svc`]);
    assert.ok(ofKind("Issuer").some((doc) => doc.metadata.name === certificate.spec!.issuerRef.name && doc.metadata.namespace === certificateNamespace));
    const volume = deployment.spec!.template.spec.volumes.find((v: { name: string }) => v.name === container.volumeMounts[0].name);
    assert.equal(volume.secret.secretName, certificate.spec!.secretName);
    assert.equal(container.volumeMounts[0].mountPath, "/etc/webhook/tls");

    const env: Record<string, string> = {};
    for (const variable of container.env) {
      assert.ok(KNOWN_VARIABLES.includes(variable.name), `the webhook does not read ${variable.name}`);
      env[variable.name] = variable.value ?? "from-a-secret";
    }
    const config = loadConfig(env);
    assert.ok(config.adjustBudgetMs < hook.timeoutSeconds * 1000, "the budget ends before the API server gives up");
    const watched: string[] = hook.namespaceSelector.matchExpressions[0].values;
    assert.deepEqual(new Set(watched), config.namespaces);
    assert.ok(!watched.includes(namespace) && !watched.includes("kube-system"), "never its own namespace");
    assert.match(hook.matchConditions[0].expression, /e\.name == 'JOBID'/);
  });

  function assertGrants(account: string, verbs: string[]): void {
    assert.ok(ofKind("ServiceAccount").some((doc) => doc.metadata.name === account), `ServiceAccount ${account}`);
    const binding = ofKind("RoleBinding").find((doc) => doc.subjects?.some((subject) => subject.kind === "ServiceAccount" && subject.name === account));
    assert.ok(binding, `a RoleBinding for ${account}`);
    const role = ofKind("Role").find((doc) => doc.metadata.name === binding.roleRef.name);
    assert.deepEqual(role?.rules, [{ apiGroups: [""], resources: ["pods"], verbs }]);
  }
});
