// Properties that hold for any input, checked on mutated real pods and envelopes (fast-check):
// nothing throws, input never causes a 5xx, every MEASUREMENT's numbers are sound, the URL keeps
// the template's shape outside the app-id segment, and every header is one Node would send.
// `npm test` runs a few hundred cases; `npm run test:fuzz` (CI) runs FUZZ_RUNS=10000 with a fixed seed.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { parseAppIdPath } from "../handler/jobs/app-id.js";
import { BatchTooLarge, decodeHttpRequest, MalformedEvent, toBinaryRequest, type CloudEvent } from "../handler/measure/cloudevent.js";
import { parseAllDocuments } from "yaml";
import { MANIFEST_FLAGS } from "../handler/deploy/flags.js";
import { manifests } from "../handler/deploy/manifests.js";
import { optionsFrom, renderManifests } from "../handler/deploy/print.js";
import { RELEASE } from "./support/manifest-variants.js";
import { annotationLedger } from "../handler/measure/ledger.js";
import type { PodApi } from "../handler/edges/kubernetes.js";
import { isNamespaceName, isPodName, type Pod } from "../handler/jobs/pod.js";
import { unprintable } from "../handler/edges/printable.js";
import { createHandler, type Outcome } from "../handler/measure/handle.js";
import { memoryLedger } from "../handler/measure/ledger.js";
import { silentLogger } from "../handler/edges/log.js";
import { createDeliver } from "../handler/edges/optune.js";
import { interpretEvent } from "../handler/measure/pod-event.js";
import { admissionResponse } from "../handler/adjust/admission.js";
import { createAdmitter } from "../handler/adjust/admit.js";
import { atCreate, applyBase64Patch } from "./support/admission.js";
import { mutatedEvent, mutatedPod, seedPods } from "./support/mutations.js";
import { startStack, type Stack } from "./support/stack.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? "300");
const SEED = Number(process.env.FUZZ_SEED ?? "20261126");
const TEMPLATE = "https://optune.example/metrics/{acct}/{app_id}/servo";
const seeds = seedPods();
const criteria = { namespaces: new Set(["default", "batch"]), appIdPath: parseAppIdPath("spec/containers/0/env/[JOBID]"), appIdSpec: "spec/containers/0/env/[JOBID]" };

/** The URL keeps the template's host, query and fragment, and every path segment but the app id's. */
function assertUrlShape(url: string, account = "acme"): void {
  const parsed = new URL(url);
  assert.equal(parsed.origin, "https://optune.example");
  assert.equal(parsed.search, "");
  assert.equal(parsed.hash, "");
  const segments = parsed.pathname.split("/");
  assert.equal(segments.length, 5, url);
  assert.deepEqual([segments[0], segments[1], segments[2], segments[4]], ["", "metrics", account, "servo"], url);
  assert.ok(segments[3] !== "" && segments[3] !== "." && segments[3] !== "..", url);
}

/** Header names and values Node accepts (it throws on anything else before sending). */
function assertHeaders(headers: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(headers)) {
    http.validateHeaderName(name);
    http.validateHeaderValue(name, value);
  }
}

/** Every number in a MEASUREMENT is a non-negative integer (perf: 1/duration), or it is not there. */
export function assertSoundMeasurement(body: unknown): void {
  const message = body as { event: string; param: Record<string, unknown> };
  if (message.event !== "MEASUREMENT") return;
  if ("status" in message.param) {
    assert.deepEqual(Object.keys(message.param).sort(), ["message", "status"]);
    return;
  }
  const metrics = message.param.metrics as Record<string, { value: unknown; unit: string }>;
  const duration = metrics.duration?.value;
  assert.ok(Number.isSafeInteger(duration) && (duration as number) >= 0, `duration ${String(duration)}`);
  if (metrics.perf !== undefined) assert.equal(metrics.perf.value, 1 / (duration as number));
  else assert.equal(duration, 0);
  if (metrics.est_duration !== undefined) assert.ok(Number.isSafeInteger(metrics.est_duration.value) && (metrics.est_duration.value as number) >= 0);
  const annotations = message.param.annotations as Record<string, unknown>;
  assert.equal(typeof annotations.resources, "string");
  for (const [key, value] of Object.entries(annotations)) {
    assert.ok(typeof value === "string" || Number.isSafeInteger(value), `annotation ${key}: ${JSON.stringify(value)}`);
  }
}

const HANDLED: ReadonlySet<Outcome["kind"]> = new Set(["sent", "ignored", "already-reported", "swept"]);

/** The whole path from HTTP bytes to the request Optune would get, with checks at the far end. */
async function handleBytes(headers: Readonly<Record<string, string>>, body: string): Promise<Outcome[]> {
  const sent: unknown[] = [];
  const deliver = createDeliver({
    optuneUrl: TEMPLATE,
    account: "acme",
    dryRun: false,
    print: () => {},
    post: async (url, text, extra) => {
      assertUrlShape(url);
      assertHeaders({ "Content-Type": "application/json", Authorization: "Bearer t0k", ...extra });
      sent.push(JSON.parse(text));
      return { ok: true, attempts: 1 };
    },
  });
  const handle = createHandler({ criteria, ledger: memoryLedger(), deliver, log: silentLogger, sweep: { unavailable: "no sweep in these tests" } });
  let decoded;
  try {
    decoded = decodeHttpRequest(headers, Buffer.from(body));
  } catch (error) {
    if (error instanceof MalformedEvent || error instanceof BatchTooLarge) return [];
    throw error;
  }
  const outcomes: Outcome[] = [];
  for (const item of decoded.events) {
    if (item instanceof MalformedEvent) continue;
    let podEvent;
    try {
      podEvent = interpretEvent(item);
    } catch (error) {
      if (error instanceof MalformedEvent) continue;
      throw error;
    }
    const outcome = await handle(podEvent);
    assert.ok(HANDLED.has(outcome.kind), `input caused ${JSON.stringify(outcome)}`);
    JSON.stringify(outcome); // the answer can always be written
    outcomes.push(outcome);
  }
  for (const message of sent) assertSoundMeasurement(message);
  return outcomes;
}

/** Events a binary-mode sender can encode: string attributes, and a content type that is a valid header value. */
const stringAttributes = (event: Record<string, unknown>): event is CloudEvent =>
  ["specversion", "id", "source", "type"].every((name) => typeof event[name] === "string") &&
  Object.entries(event).every(([name, value]) => name === "data" || value === undefined || typeof value === "string") &&
  (event.datacontenttype === undefined || /^[\x20-\x7e]*$/.test(event.datacontenttype as string));

describe(`properties of the pipeline (${RUNS} cases, seed ${SEED}, ${seeds.length} seed pods)`, () => {
  test("structured mode: never throws, never fails because of input, sound messages, URL and headers", async () => {
    await fc.assert(
      fc.asyncProperty(mutatedEvent(seeds), async (event) => {
        await handleBytes({ "content-type": "application/cloudevents+json" }, JSON.stringify(event));
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  test("binary mode, as an ApiServerSource sends it: the same", async () => {
    await fc.assert(
      fc.asyncProperty(mutatedEvent(seeds).filter(stringAttributes), async (event) => {
        const request = toBinaryRequest(event);
        await handleBytes(request.headers, request.body);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  test("batches: every item has its own outcome; one bad item does not stop the others", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mutatedEvent(seeds), { minLength: 1, maxLength: 5 }), async (events) => {
        await handleBytes({ "content-type": "application/cloudevents-batch+json" }, JSON.stringify(events));
      }),
      { numRuns: Math.max(50, Math.floor(RUNS / 5)), seed: SEED },
    );
  });

  test("the pods are real: most unmutated seeds are measured", async () => {
    let sent = 0;
    for (const pod of seeds) {
      const outcomes = await handleBytes({ "content-type": "application/cloudevents+json" }, JSON.stringify({ specversion: "1.0", id: "1", source: "s", type: "dev.knative.apiserver.resource.update", data: pod }));
      if (outcomes[0]?.kind === "sent") sent++;
    }
    assert.ok(sent >= 3, `${sent} of ${seeds.length} seed pods measured`);
  });
});

describe(`properties of an admission (${RUNS} cases)`, () => {
  const ranges = { cpu: { min: 0.1, max: 3.5, step: 0.001 }, mem: { min: 67108864, max: 1073741824, step: 4096 } };
  test("any pod at CREATE and any ADJUST: never throws, never blocks, and a patch always applies", async () => {
    const adjustArb = fc.record({ cpu: fc.integer({ min: 100, max: 3500 }).map((m) => m / 1000), mem: fc.integer({ min: 16384, max: 262144 }).map((pages) => pages * 4096) });
    await fc.assert(
      fc.asyncProperty(mutatedPod(seeds), adjustArb, fc.boolean(), async (pod, settings, withState) => {
        const object = atCreate(pod);
        const name = (object as { spec?: { containers?: Array<{ name?: unknown }> } }).spec?.containers?.[0]?.name;
        const components = { [typeof name === "string" ? name : "worker"]: { settings: { cpu: { value: settings.cpu }, mem: { value: settings.mem } } } };
        let asked = 0;
        const admit = createAdmitter({
          criteria,
          ranges,
          budgetMs: 1000,
          deliver: async (message) => {
            if ((message.body as { event: string }).event !== "WHATS_NEXT") return { ok: true, attempts: 1 };
            const command = asked++ === 0 ? { cmd: "ADJUST", param: withState ? { state: { application: { components } } } : { application: { components } } } : { cmd: "MEASURE" };
            return { ok: true, attempts: 1, answer: JSON.stringify(command) };
          },
        });
        const admission = await admit({ uid: "u", operation: "CREATE", resource: "/pods", namespace: "batch", dryRun: false, object });
        const response = admissionResponse("u", { ...(admission.patch ? { patch: admission.patch } : {}) }) as { response: { allowed: boolean; patch?: string } };
        assert.equal(response.response.allowed, true);
        // Not adjusted: the only change allowed is removing a settings annotation the webhook did not write.
        if (admission.result !== "adjusted") assert.ok(admission.patch === undefined || JSON.stringify(admission.patch) === '[{"op":"remove","path":"/metadata/annotations/optune.ai~1settings"}]', JSON.stringify(admission.patch));
        if (response.response.patch !== undefined) {
          const patched = applyBase64Patch(object, response.response.patch) as { spec: { containers: Array<{ resources: { limits: Record<string, unknown>; requests: Record<string, unknown> } }> } };
          if (admission.result !== "adjusted") return;
          const resources = patched.spec.containers.find((container) => (container as { name?: unknown }).name === name)?.resources;
          assert.equal(resources?.limits.cpu, resources?.requests.cpu);
          assert.equal(resources?.limits.memory, resources?.requests.memory);
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

describe(`properties through the real server (${Math.max(50, Math.floor(RUNS / 5))} cases)`, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ POD_NAMESPACES: "default,batch", OPTUNE_ACCOUNT: "acme", OPTUNE_AUTH_TOKEN: "t0k", LOG_LEVEL: "error" });
  });
  after(() => stack.close());

  test("no input is answered 5xx; what reaches Optune keeps the URL's shape and sound numbers", async () => {
    await fc.assert(
      fc.asyncProperty(mutatedEvent(seeds), fc.boolean(), async (event, binary) => {
        const before = stack.measurements().length;
        const request = binary && stringAttributes(event) ? toBinaryRequest(event) : { headers: { "content-type": "application/cloudevents+json" }, body: JSON.stringify(event) };
        const response = await stack.post(request.body, request.headers);
        const text = await response.text();
        assert.ok(response.status < 500, `${response.status}: ${text}`);
        assert.ok([200, 400].includes(response.status), `${response.status}: ${text}`);
        for (const post of stack.measurements().slice(before)) {
          assertUrlShape(`https://optune.example${post.path}`);
          assertSoundMeasurement(post.body);
        }
      }),
      { numRuns: Math.max(50, Math.floor(RUNS / 5)), seed: SEED },
    );
  });
});

/** Text an attacker would try: line breaks YAML 1.1 knows, controls, quotes, document markers, shell and CEL syntax. */
const hostileText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc
    .array(fc.constantFrom("a", "-", "/", "[", "]", ",", ".", ":", " ", "\n", "\r", "\u0085", "\u2028", "\u2029", "\t", "\u0000", "\u001b", "\u009b", "\ufeff", "\u202e", "'", '"', "\\", "#", "---", "...", "{", "}", "&", "*", "!", "|", ">", "%", "@", "$(", "`", "kind: Namespace"), { maxLength: 12 })
    .map((parts) => parts.join("")),
);
const STRING_FLAGS = Object.entries(MANIFEST_FLAGS).filter(([, spec]) => spec.type === "string").map(([name]) => name);

describe(`properties of manifests (${RUNS} cases)`, () => {
  // Either the flags are refused, or the output is exactly the documents intended: no value can
  // add, split or hide one, under YAML 1.2 (yaml) or 1.1 (kubectl's parser), and it holds none of
  // the characters YAML 1.1 reads as a line break.
  test("any value for any flag: refused, or exactly the intended documents", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...STRING_FLAGS), hostileText, fc.boolean(), async (flag, value, webhook) => {
        const options = optionsFrom({ watch: "batch", image: RELEASE.image, [flag]: value, ...(webhook ? { webhook: true } : {}) }, RELEASE.version);
        if (typeof options === "string") return;
        const text = await renderManifests(options);
        assert.equal(unprintable(text.replaceAll("\n", "")), undefined, `${flag}=${JSON.stringify(value)} put an unprintable character in the output`);
        const intended = manifests(options).map(({ manifest }) => `${manifest.kind} ${manifest.metadata.namespace ?? ""}/${manifest.metadata.name}`);
        for (const version of ["1.1", "1.2"] as const) {
          const parsed = parseAllDocuments(text, { version });
          const documents = (Array.isArray(parsed) ? parsed : [parsed]).map((document) => {
            assert.deepEqual(document.errors, [], `${flag}=${JSON.stringify(value)}: YAML ${version} errors`);
            const object = document.toJS() as { kind: string; metadata: { name: string; namespace?: string } };
            return `${object.kind} ${object.metadata.namespace ?? ""}/${object.metadata.name}`;
          });
          assert.deepEqual(documents, intended, `${flag}=${JSON.stringify(value)} under YAML ${version}`);
        }
        for (const line of text.split("\n").slice(0, 3)) assert.match(line, /^# /);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

describe(`properties of event names (${RUNS} cases)`, () => {
  // Whatever names an event carries, the Kubernetes client is asked only for pods/{name} with a
  // pod name in a watched namespace (and the sweep's LIST): never a LIST by accident, never the Namespace.
  test("any name or namespace in a Reference or Resource event: every Kubernetes call names a valid pod in a watched namespace", async () => {
    const calls: Array<{ verb: string; namespace: string; name?: string }> = [];
    const record = (verb: string, namespace: string, name?: string) => {
      calls.push({ verb, namespace, ...(name === undefined ? {} : { name }) });
    };
    const api: PodApi = {
      read: async (namespace, name) => (record("get", namespace, name), undefined),
      list: async (namespace) => (record("list", namespace), { items: [] }),
      patch: async (namespace, name) => (record("patch", namespace, name), {} as Pod),
    };
    const ledger = annotationLedger({ api, memory: memoryLedger(), instance: "servo-a", ttlMs: 120_000, now: Date.now, onRefused: () => {}, proofKey: "k" });
    const handle = createHandler({ criteria, ledger, pods: api, deliver: async () => ({ ok: true, attempts: 1 }), log: silentLogger, sweep: { unavailable: "-" } });
    const name = fc.oneof(hostileText, fc.constantFrom("", ".", "..", "a/b", "%2e%2e", "pod-1", "x".repeat(254)));
    const namespace = fc.oneof(fc.constantFrom("batch", "default", "..", "", "batch/pods"), hostileText);
    await fc.assert(
      fc.asyncProperty(name, namespace, fc.boolean(), fc.constantFrom("update", "delete"), async (podName, podNamespace, reference, action) => {
        const data = reference ? { kind: "Pod", apiVersion: "v1", name: podName, namespace: podNamespace } : { ...seeds[0], metadata: { ...(seeds[0] as Pod).metadata, name: podName, namespace: podNamespace } };
        const type = `dev.knative.apiserver.${reference ? "ref" : "resource"}.${action}`;
        let event;
        try {
          event = interpretEvent({ specversion: "1.0", id: "x", source: "s", type, data });
        } catch (error) {
          if (error instanceof MalformedEvent) return;
          throw error;
        }
        await handle(event);
        for (const call of calls.splice(0)) {
          assert.ok(isNamespaceName(call.namespace) && criteria.namespaces.has(call.namespace), JSON.stringify(call));
          if (call.verb !== "list") assert.ok(isPodName(call.name), JSON.stringify(call));
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
