// The webhook's cache of the watched namespaces' LimitRanges and ResourceQuotas: the pure state
// and its events, then the LIST+WATCH loops against a stand-in API server.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connectKubernetes } from "../handler/edges/kubernetes.js";
import { createLogger } from "../handler/edges/log.js";
import { applyEvent, decodeWatchEvent, listed, startPolicyCache, type KindState, type PolicyCache } from "../handler/adjust/policy-cache.js";
import { startFakePolicies, type FakePolicies } from "./support/fake-policies.js";

const LIMITS = { objects: 3, bytes: 10_000 };
const range = (name: string, cpu: string, version = "1") => ({ metadata: { name, resourceVersion: version, managedFields: [{ manager: "kubectl" }] }, spec: { limits: [{ type: "Container", max: { cpu } }] } });
const state = (step: ReturnType<typeof listed>): KindState => {
  assert.ok("state" in step, JSON.stringify(step));
  return step.state;
};
const names = (kind: KindState) => [...kind.objects.keys()].sort();

describe("a kind's state (pure)", () => {
  test("a watch line is decoded into its event; a line that is not one is undefined", () => {
    assert.deepEqual(decodeWatchEvent(JSON.stringify({ type: "ADDED", object: range("small", "1", "7") })), { type: "ADDED", name: "small", object: range("small", "1", "7"), resourceVersion: "7" });
    assert.deepEqual(decodeWatchEvent(JSON.stringify({ type: "BOOKMARK", object: { kind: "LimitRange", metadata: { resourceVersion: "9" } } })), { type: "BOOKMARK", resourceVersion: "9" });
    assert.deepEqual(decodeWatchEvent(JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, message: "too old\u001b[31m" } })), { type: "ERROR", code: 410, message: "too old\\u001B[31m" });
    for (const line of ["not json", "[]", JSON.stringify({ type: "ADDED", object: { metadata: { name: "x" } } }), JSON.stringify({ type: "SURPRISE", object: range("x", "1") })]) assert.equal(decodeWatchEvent(line), undefined, line);
  });

  test("a LIST keeps each object's name, resourceVersion, spec and status, nothing else", () => {
    const kept = state(listed([range("small", "1", "4")], "5", LIMITS));
    assert.equal(kept.resourceVersion, "5");
    assert.deepEqual([...kept.objects.values()].map((entry) => entry.object), [{ metadata: { name: "small", resourceVersion: "4" }, spec: range("small", "1").spec, status: undefined }]);
  });

  test("ADDED, MODIFIED and DELETED change the objects and move the resourceVersion; a BOOKMARK moves only the version", () => {
    let kind = state(listed([range("a", "1")], "5", LIMITS));
    kind = state(applyEvent(kind, { type: "ADDED", name: "b", object: range("b", "2"), resourceVersion: "6" }, LIMITS));
    assert.deepEqual(names(kind), ["a", "b"]);
    kind = state(applyEvent(kind, { type: "MODIFIED", name: "a", object: range("a", "3"), resourceVersion: "7" }, LIMITS));
    assert.deepEqual((kind.objects.get("a")!.object as { spec: unknown }).spec, range("a", "3").spec);
    kind = state(applyEvent(kind, { type: "DELETED", name: "b", object: range("b", "2"), resourceVersion: "8" }, LIMITS));
    assert.deepEqual(names(kind), ["a"]);
    kind = state(applyEvent(kind, { type: "BOOKMARK", resourceVersion: "12" }, LIMITS));
    assert.deepEqual([names(kind), kind.resourceVersion], [["a"], "12"]);
  });

  test("more objects or bytes than the caps are not kept: LIST again (later)", () => {
    assert.ok("relist" in listed(["a", "b", "c", "d"].map((name) => range(name, "1")), "1", LIMITS));
    assert.ok("relist" in listed([range("a", "1".repeat(20_000))], "1", LIMITS));
    const full = state(listed(["a", "b", "c"].map((name) => range(name, "1")), "1", LIMITS));
    assert.ok("relist" in applyEvent(full, { type: "ADDED", name: "d", object: range("d", "1"), resourceVersion: "2" }, LIMITS));
  });

  test("an ERROR event makes the kind LIST again; with 410 (the version is gone) at once", () => {
    const kind = state(listed([], "1", LIMITS));
    assert.deepEqual(applyEvent(kind, { type: "ERROR", code: 410, message: "too old" }), { relist: "the watch answered 410: too old", gone: true });
    assert.deepEqual(applyEvent(kind, { type: "ERROR", code: 500, message: "oops" }), { relist: "the watch answered 500: oops", gone: false });
  });
});

describe("the cache against an API server", () => {
  let api: FakePolicies;
  let cache: PolicyCache;
  const logged: string[] = [];
  before(async () => {
    api = await startFakePolicies();
    api.put("etl", "limitranges", "small", { limits: [{ type: "Container", max: { cpu: "1" } }] });
    api.put("etl", "resourcequotas", "cpu", { hard: { "limits.cpu": "4" } }, { hard: { "limits.cpu": "4" }, used: { "limits.cpu": "1" } });
    const kubernetes = connectKubernetes({ kind: "files", paths: [api.kubeconfig] }, { timeoutMs: 5000 });
    cache = startPolicyCache({ api: kubernetes, namespaces: ["etl"], log: createLogger("warn", (line) => logged.push(line)), backoff: { firstMs: 20, maxMs: 100 }, limits: { objects: 4, bytes: 100_000 } });
    await until(() => cache.synced("etl"));
  });
  after(async () => {
    cache.stop();
    await api.close();
  });
  const rangeNames = async () => (await cache.policies("etl")).limitRanges.map((item) => (item as { metadata: { name: string } }).metadata.name).sort();

  test("once synced, an admission reads the namespace's policies without a request", async () => {
    const requests = api.count.list + api.count.watch;
    for (let i = 0; i < 100; i++) {
      const policies = await cache.policies("etl");
      assert.equal(policies.limitRanges.length, 1);
      assert.deepEqual((policies.quotas[0] as { status: unknown }).status, { hard: { "limits.cpu": "4" }, used: { "limits.cpu": "1" } });
    }
    assert.equal(api.count.list + api.count.watch, requests);
  });

  test("a namespace that is not watched is LISTed per admission, two LISTs", async () => {
    const lists = api.count.list;
    assert.deepEqual(await cache.policies("other"), { limitRanges: [], quotas: [] });
    assert.equal(api.count.list, lists + 2);
  });

  test("a LimitRange created, changed and deleted is followed", async () => {
    api.put("etl", "limitranges", "big", { limits: [{ type: "Container", max: { cpu: "8" } }] });
    await until(async () => (await rangeNames()).includes("big"));
    api.put("etl", "limitranges", "big", { limits: [{ type: "Container", max: { cpu: "6" } }] });
    await until(async () => JSON.stringify((await cache.policies("etl")).limitRanges).includes('"6"'));
    api.remove("etl", "limitranges", "big");
    await until(async () => !(await rangeNames()).includes("big"));
    assert.deepEqual(await rangeNames(), ["small"]);
  });

  test("410 Gone (the history compacted): the cache LISTs again and follows on", async () => {
    const lists = api.count.list;
    api.compact();
    await until(() => api.count.list > lists && cache.synced("etl"));
    api.put("etl", "limitranges", "after-compaction", { limits: [] });
    await until(async () => (await rangeNames()).includes("after-compaction"));
    api.remove("etl", "limitranges", "after-compaction");
    await until(async () => !(await rangeNames()).includes("after-compaction"));
  });

  test("while the watch is refused, each admission LISTs; the cache comes back with the watch", async () => {
    api.refuse("watch");
    api.cut();
    await until(() => !cache.synced("etl"));
    const lists = api.count.list;
    await cache.policies("etl");
    // Two for the admission; the loops may LIST again meanwhile.
    assert.ok(api.count.list >= lists + 2);
    await until(() => logged.some((line) => line.includes("cannot watch the namespace's policies") && line.includes("answered 403 to watch")));
    api.refuse(undefined);
    await until(() => cache.synced("etl"));
    assert.deepEqual(await rangeNames(), ["small"]);
  });

  test("a watch that ends at once is not asked again in a loop: it waits first", async () => {
    api.endWatches(true);
    api.cut();
    const watches = api.count.watch;
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Two kinds, a wait of at least 20 ms after each: at most 50 in 500 ms (thousands without it).
    assert.ok(api.count.watch - watches <= 50, `${api.count.watch - watches} watches in 500 ms`);
    api.endWatches(false);
    api.cut();
    await until(() => cache.synced("etl"));
  });

  test("over the caps the namespace is not cached: its admissions LIST", async () => {
    for (const name of ["a", "b", "c", "d", "e"]) api.put("etl", "limitranges", name, { limits: [] });
    await until(() => !cache.synced("etl"));
    assert.equal((await cache.policies("etl")).limitRanges.length, 6);
    for (const name of ["a", "b", "c", "d", "e"]) api.remove("etl", "limitranges", name);
    await until(() => cache.synced("etl"));
  });
});

/** Waits (up to 10 s, generous on a busy machine) until `done` holds. */
async function until(done: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error("not within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
