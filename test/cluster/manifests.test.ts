// Every document of every `manifests` variant, sent to the real API server of the newest release
// and of the oldest minor the README claims, after the real CRDs of Knative Serving and Eventing,
// cert-manager and prometheus-operator (from their own Go modules) are applied: with strict field
// validation an unknown or misspelt field is an error, and a server-side dry run checks each one
// with the real validation and admission without keeping it (the variants share names).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DEFAULT_OPTIONS, manifests } from "../../handler/deploy/manifests.js";
import { VARIANTS } from "../support/manifest-variants.js";
import { createAll, startRealApiServer, type Document, type RealApiServer } from "./apiserver.js";
import { kubernetes, skipUnlessInstalled, type KubernetesRelease } from "./components.js";
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
        const documents = manifests({ ...DEFAULT_OPTIONS, ...variant }).map(({ manifest }) => manifest as unknown as Document);
        // Namespaces for real (the others are created in them), then everything as a dry run.
        const namespaces = [...new Set([...documents.map((document) => document.metadata.namespace).filter((name): name is string => name !== undefined)])];
        for (const namespace of namespaces) await server.createNamespace(namespace);
        assert.deepEqual(await createAll(server, documents.filter((document) => document.kind !== "Namespace"), { dryRun: true }), []);
        assert.deepEqual(await createAll(server, documents.filter((document) => document.kind === "Namespace"), { dryRun: true }).then((refused) => refused.filter((line) => !/ 409 /.test(line))), []);
      });
    }

    test("a misspelt field is refused wherever the real schema is closed: strict validation is really on", async () => {
      const documents = manifests({ ...DEFAULT_OPTIONS, webhook: true, podMonitor: true, broker: true }).map(({ manifest }) => manifest as unknown as Document & { spec: Record<string, unknown> });
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
  });
}
