// The function's Kubernetes client against a real kube-apiserver listening on IPv6 (bound to ::,
// reached at [::1]), as on a cluster whose KUBERNETES_SERVICE_HOST is IPv6: a pod LIST and a
// TokenReview go through. `npm run test:cluster`; skipped without the components.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connectKubernetes, type KubernetesApi } from "../../handler/edges/kubernetes.js";
import { startRealApiServer, type RealApiServer } from "./apiserver.js";
import { skipUnlessInstalled } from "./components.js";

const skip = skipUnlessInstalled();

describe("a real API server on IPv6", { skip }, () => {
  let server: RealApiServer;
  let api: KubernetesApi;
  before(async () => {
    server = await startRealApiServer({ flags: ["--bind-address=::"] });
    await server.createNamespace("batch");
    const admin = join(server.dir, "kubeconfig-ipv6");
    // The certificate the API server made for itself names 127.0.0.1 and its DNS names, not ::1 (a cluster's names its IPv6 service address).
    const ipv6 = `server: https://[::1]:${new URL(server.url).port}\n    tls-server-name: kubernetes.default.svc`;
    writeFileSync(admin, readFileSync(server.kubeconfig(), "utf8").replace(`server: ${server.url}`, ipv6));
    api = connectKubernetes({ kind: "files", paths: [admin] }, { timeoutMs: 10_000 });
  });
  after(() => server?.stop());

  test("a LIST of pods through https://[::1]:port", async () => {
    assert.deepEqual((await api.list("batch", { limit: 10 })).items, []);
  });

  test("a TokenReview through https://[::1]:port", async () => {
    const token = await server.serviceAccountToken("batch", "default", ["ipv6-audience"], 600);
    const verdict = await api.review(token, "ipv6-audience");
    assert.deepEqual(verdict, { authenticated: true, user: "system:serviceaccount:batch:default", audiences: ["ipv6-audience"] });
  });
});
