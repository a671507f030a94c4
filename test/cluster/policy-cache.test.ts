// The webhook's LimitRange and ResourceQuota cache against a real kube-apiserver, with the
// webhook's own ServiceAccount and the Role `manifests --webhook` writes (list and watch): the
// cache syncs, follows a LimitRange created, changed and deleted, and what it shows narrows an
// admission's ranges as the LISTs did. `npm run test:cluster`; skipped without the components.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { admittedRanges } from "../../handler/adjust/namespace-bounds.js";
import { startPolicyCache, type PolicyCache } from "../../handler/adjust/policy-cache.js";
import type { Ranges } from "../../handler/adjust/settings.js";
import { manifests, type ManifestOptions, type Release } from "../../handler/deploy/manifests.js";
import { connectKubernetes } from "../../handler/edges/kubernetes.js";
import { createLogger } from "../../handler/edges/log.js";
import type { Pod } from "../../handler/jobs/pod.js";
import { TEST_OPTIONS } from "../support/manifest-variants.js";
import { createAll, startRealApiServer, type Document, type RealApiServer } from "./apiserver.js";
import { skipUnlessInstalled } from "./components.js";
import { waitFor } from "./tier.js";

const OPTIONS: ManifestOptions & Release = { ...TEST_OPTIONS, watch: ["batch"], account: "acme", webhook: true };
const RANGES: Ranges = { cpu: { min: 0.1, max: 3.5, step: 0.001 }, mem: { min: 67108864, max: 1073741824, step: 4096 } };
const POD = { metadata: { namespace: "batch", generateName: "resize-" }, spec: { containers: [{ name: "worker", resources: { limits: { cpu: "500m" } } }] } } as unknown as Pod;
/** How long a change may take to reach the cache: moments on a live watch; generous for a busy machine. */
const BOUND_MS = 15_000;

describe("the webhook's policy cache against a real kube-apiserver", { skip: skipUnlessInstalled() }, () => {
  let server: RealApiServer;
  let cache: PolicyCache;
  const logged: string[] = [];
  const cpuMax = async () => {
    const admitted = admittedRanges(RANGES, await cache.policies("batch"), POD, "worker");
    assert.ok("ranges" in admitted, JSON.stringify(admitted));
    return admitted.ranges.cpu.max;
  };
  const reaches = (what: string, cpu: number) => waitFor(what, async () => (cache.synced("batch") && (await cpuMax()) === cpu) || undefined, BOUND_MS);

  before(async () => {
    server = await startRealApiServer();
    await server.createNamespace("batch");
    const rbac = manifests(OPTIONS).filter(({ manifest }) => ["Namespace", "ServiceAccount", "Role", "RoleBinding"].includes((manifest as { kind?: string }).kind ?? ""));
    assert.deepEqual(await createAll(server, rbac.map(({ manifest }) => manifest as unknown as Document)), []);
    const token = await server.serviceAccountToken(OPTIONS.namespace, "servo-k8s-multijob-webhook");
    const api = connectKubernetes({ kind: "files", paths: [server.kubeconfig(token, "webhook")] }, { timeoutMs: 5000 });
    cache = startPolicyCache({ api, namespaces: ["batch"], log: createLogger("warn", (line) => logged.push(line)) });
    await waitFor("the cache synced", async () => cache.synced("batch") || undefined, 30_000);
  });
  after(async () => {
    cache?.stop();
    await server?.stop();
  });

  test("a LimitRange created is seen within the bound, and narrows an admission's ranges", async () => {
    assert.equal(await cpuMax(), 3.5);
    const created = await server.request("POST", "/api/v1/namespaces/batch/limitranges", { apiVersion: "v1", kind: "LimitRange", metadata: { name: "small" }, spec: { limits: [{ type: "Container", max: { cpu: "1" } }] } });
    assert.equal(created.status, 201);
    await reaches("the LimitRange in the cache", 1);
  });

  test("a LimitRange changed, then deleted, is followed", async () => {
    const changed = await server.request("PATCH", "/api/v1/namespaces/batch/limitranges/small", { spec: { limits: [{ type: "Container", max: { cpu: "2" } }] } }, { contentType: "application/merge-patch+json" });
    assert.equal(changed.status, 200);
    await reaches("the change in the cache", 2);
    assert.equal((await server.request("DELETE", "/api/v1/namespaces/batch/limitranges/small")).status, 200);
    await reaches("the deletion in the cache", 3.5);
  });

  test("the webhook's Role allows the watch: the cache never fell back", () => {
    assert.deepEqual(logged, []);
  });
});
