// Every document of every `manifests` variant, sent to the real API server of the newest release
// and of the oldest minor the README claims, after the real CRDs of Knative Serving and Eventing,
// cert-manager and prometheus-operator (from their own Go modules) are applied: with strict field
// validation an unknown or misspelt field is an error, and a server-side dry run checks each one
// with the real validation and admission without keeping it (the variants share names).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { manifests, type ManifestOptions } from "../../handler/deploy/manifests.js";
import { renderManifests } from "../../handler/deploy/print.js";
import { CLI, runCli } from "../support/cli.js";
import { TEST_OPTIONS, VARIANTS } from "../support/manifest-variants.js";
import { collectionPath, createAll, startRealApiServer, type Document, type RealApiServer } from "./apiserver.js";
import { KUBECTL, kubernetes, skipUnlessInstalled, type KubernetesRelease } from "./components.js";
import { applyCrds } from "./crds.js";

for (const release of ["newest", "oldest"] as const satisfies readonly KubernetesRelease[]) {
  describe(`manifests, strictly validated by kube-apiserver ${kubernetes(release).version} with the real CRDs`, { skip: skipUnlessInstalled(release) }, () => {
    let server: RealApiServer;
    before(async () => {
      server = await startRealApiServer({ release });
      await applyCrds(server);
      console.log(`# manifests against ${server.version}`);
    });
    after(async () => {
      await server?.stop();
    });

    for (const variant of VARIANTS) {
      test(`manifests ${JSON.stringify(variant)}: every document accepted`, async () => {
        // ValidatingAdmissionPolicy is GA since 1.30: on the oldest release claimed, `--no-patch-policy`.
        const documents = manifests({ ...TEST_OPTIONS, ...variant, ...(release === "oldest" ? { patchPolicy: false } : {}) }).map(({ manifest }) => manifest as unknown as Document);
        // Namespaces for real (the others are created in them), then everything as a dry run.
        const namespaces = [...new Set([...documents.map((document) => document.metadata.namespace).filter((name): name is string => name !== undefined)])];
        for (const namespace of namespaces) await server.createNamespace(namespace);
        assert.deepEqual(await createAll(server, documents.filter((document) => document.kind !== "Namespace"), { dryRun: true }), []);
        assert.deepEqual(await createAll(server, documents.filter((document) => document.kind === "Namespace"), { dryRun: true }).then((refused) => refused.filter((line) => !/ 409 /.test(line))), []);
      });
    }

    test("a misspelt field is refused wherever the real schema is closed: strict validation is really on", async () => {
      const documents = manifests({ ...TEST_OPTIONS, webhook: true, podMonitor: true, broker: true }).map(({ manifest }) => manifest as unknown as Document & { spec: Record<string, unknown> });
      for (const namespace of ["optune-servo", "default"]) await server.createNamespace(namespace);
      for (const kind of ["Deployment", "Certificate", "PodMonitor", "PingSource", "NetworkPolicy"]) {
        const document = documents.find((candidate) => candidate.kind === kind)!;
        const refused = await createAll(server, [{ ...document, spec: { ...document.spec, misspeltField: "typo" } } as Document], { dryRun: true });
        assert.equal(refused.length, 1, `${kind} with a misspelt field was accepted`);
        assert.match(refused[0]!, /unknown field "spec\.misspeltField"/, kind);
      }
      // Knative Eventing's ApiServerSource and Trigger keep unknown fields in their spec (their CRDs say so): only the
      // offline schema (test/manifests.test.ts) catches a misspelling there.
      const source = documents.find((candidate) => candidate.kind === "ApiServerSource")!;
      assert.deepEqual(await createAll(server, [{ ...source, spec: { ...source.spec, misspeltField: "typo" } } as Document], { dryRun: true }), []);
    });

    // Last: it creates objects for real, which the dry runs above would then find in their way.
    test("upgrade from --watch batch,etl to --watch batch, then remove: uninstall finds exactly what is to go, by label, without the install flags", async () => {
      const installed: ManifestOptions & typeof TEST_OPTIONS = { ...TEST_OPTIONS, account: "acme.example.com", webhook: true, broker: true, podMonitor: true, prometheusRules: true, eventAuth: true, watch: ["batch", "etl"], ...(release === "oldest" ? { patchPolicy: false } : {}) };
      const upgraded = { ...installed, watch: ["batch"] };
      const name = (document: { kind: string; metadata: { name: string; namespace?: string } }) => `${document.kind} ${document.metadata.namespace ?? ""}/${document.metadata.name}`;
      const objects = (options: typeof installed) => manifests(options).map(({ manifest }) => manifest as unknown as Document).filter((document) => document.kind !== "Namespace");
      for (const namespace of ["optune-servo", "batch", "etl"]) await server.createNamespace(namespace);
      assert.deepEqual(await createAll(server, objects(installed)), []);
      // The token Secret, made by hand as the README says: uninstall must leave it.
      assert.equal((await server.request("POST", "/api/v1/namespaces/optune-servo/secrets", { apiVersion: "v1", kind: "Secret", metadata: { name: "optune-auth-token" }, stringData: { token: "t0k" } })).status, 201);
      const kubeconfig = server.kubeconfig();
      const uninstall = async (...args: string[]) => {
        const run = await runCli(["uninstall", ...args], { KUBECONFIG: kubeconfig });
        assert.equal(run.code, 0, run.stderr);
        return parseAllDocuments(run.stdout).map((document) => document.toJS() as Document).filter((document) => document !== null);
      };
      /** What `kubectl delete -f -` does with the output. */
      const deleteAll = async (documents: readonly Document[]) => {
        for (const document of documents) assert.equal((await server.request("DELETE", `${await collectionPath(server, document)}/${document.metadata.name}`)).status, 200, name(document));
      };

      const copy = join(server.dir, "servo.yaml");
      writeFileSync(copy, await renderManifests(upgraded));
      const stale = await uninstall("--keep", copy);
      assert.deepEqual(stale.map(name).sort(), objects(installed).filter((document) => document.metadata.namespace === "etl").map(name).sort());
      await deleteAll(stale);

      const rest = await uninstall();
      assert.deepEqual(rest.map(name).sort(), objects(upgraded).map(name).sort());
      assert.equal(rest[0]!.kind, "MutatingWebhookConfiguration", "the API server stops calling the webhook first");
      await deleteAll(rest);
      assert.deepEqual(await uninstall(), []);
      assert.equal((await server.request("GET", "/api/v1/namespaces/optune-servo/secrets/optune-auth-token")).status, 200, "the token Secret is kept");
    });

    test("the README's lines with the real kubectl: install watching batch,etl, upgrade to batch, remove; nothing of ours is left but the namespace and the Secret", { skip: release === "oldest" ? "kubectl of the newest release only" : skipUnlessInstalled(release, [KUBECTL]) }, async () => {
      const dir = join(server.dir, "operator");
      spawnSync("mkdir", ["-p", dir]);
      // The command as the reader has it on their PATH.
      writeFileSync(join(dir, "servo-k8s-multijob"), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
      chmodSync(join(dir, "servo-k8s-multijob"), 0o755);
      const shell = (line: string) => {
        const run = spawnSync("bash", ["-o", "pipefail", "-c", line], { cwd: dir, encoding: "utf8", env: { PATH: `${dir}:${dirname(KUBECTL)}:${process.env.PATH ?? ""}`, HOME: dir, KUBECONFIG: server.kubeconfig() } });
        assert.equal(run.status, 0, `${line}\n${run.stdout}\n${run.stderr}`);
        return run.stdout;
      };
      const ours = async (namespace: string) => {
        const labelled = `labelSelector=${encodeURIComponent("app.kubernetes.io/part-of=servo-k8s-multijob")}`;
        const kinds = ["/api/v1/namespaces/NS/serviceaccounts", "/apis/rbac.authorization.k8s.io/v1/namespaces/NS/roles", "/apis/rbac.authorization.k8s.io/v1/namespaces/NS/rolebindings", "/apis/sources.knative.dev/v1/namespaces/NS/apiserversources"];
        const names: string[] = [];
        for (const path of kinds) names.push(...((await server.request("GET", `${path.replace("NS", namespace)}?${labelled}`)).body.items as Array<{ kind?: string; metadata: { name: string } }>).map((item) => `${path.split("/").at(-1)}/${item.metadata.name}`));
        return names.sort();
      };
      const flags = `--image ${TEST_OPTIONS.image} --account acme.example.com --webhook`;
      const inEtl = manifests({ ...TEST_OPTIONS, account: "acme.example.com", webhook: true, watch: ["batch", "etl"] }).filter(({ manifest }) => manifest.metadata.namespace === "etl").length;

      shell(`servo-k8s-multijob manifests ${flags} --watch batch,etl | tee servo.yaml | kubectl apply -f -`);
      assert.equal((await ours("etl")).length, inEtl, `etl: ${(await ours("etl")).join(", ")}`);
      shell(`servo-k8s-multijob manifests ${flags} --watch batch | tee servo.yaml | kubectl apply -f -`);
      const deleted = shell("servo-k8s-multijob uninstall --keep servo.yaml | kubectl delete -f -");
      assert.deepEqual(await ours("etl"), [], deleted);
      assert.equal((await ours("batch")).length, inEtl, "batch keeps as many as etl had");

      shell("servo-k8s-multijob uninstall | kubectl delete -f -");
      for (const namespace of ["batch", "etl", "optune-servo"]) assert.deepEqual(await ours(namespace), [], namespace);
      assert.match(shell("servo-k8s-multijob uninstall"), /^# 0 objects labelled/);
      assert.equal((await server.request("GET", "/api/v1/namespaces/optune-servo/secrets/optune-auth-token")).status, 200, "the token Secret is kept");
      assert.equal((await server.request("GET", "/api/v1/namespaces/optune-servo")).status, 200, "the namespace is kept");
    });
  });
}
