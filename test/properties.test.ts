// Properties that hold for any input, checked on mutated real pods and envelopes (fast-check):
// nothing throws, input never causes a 5xx, every MEASUREMENT's numbers are sound, the URL keeps
// the template's shape outside the app-id segment, and every header is one Node would send; and
// whatever an API server answers, `check` prints only printable, clipped lines.
// `npm test` runs a few hundred cases; `npm run test:fuzz` (CI) runs FUZZ_RUNS=10000 with a fixed seed.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { KubeConfig } from "@kubernetes/client-node";
import { parseAppIdPath } from "../handler/jobs/app-id.js";
import { BatchTooLarge, decodeHttpRequest, MalformedEvent, toBinaryRequest, type CloudEvent } from "../handler/measure/cloudevent.js";
import { parseAllDocuments } from "yaml";
import { MANIFEST_FLAGS } from "../handler/deploy/flags.js";
import { DEFAULT_OPTIONS, manifests } from "../handler/deploy/manifests.js";
import { runChecks, type CheckOptions } from "../handler/check/checks.js";
import { gatherFacts } from "../handler/check/gather.js";
import { MAX_TEXT, renderJson, renderText } from "../handler/check/report.js";
import { optionsFrom, renderManifests } from "../handler/deploy/print.js";
import { RELEASE } from "./support/manifest-variants.js";
import { annotationLedger } from "../handler/measure/ledger.js";
import { apiEndpoint, type PodApi } from "../handler/edges/kubernetes.js";
import { parseExecCredential, takeOverCredentials } from "../handler/edges/kube-credentials.js";
import { createEventAuthenticator, unverifiedClaims } from "../handler/measure/event-auth.js";
import { isNamespaceName, isPodName, type Pod } from "../handler/jobs/pod.js";
import { unprintable } from "../handler/edges/printable.js";
import type { AddressInfo } from "node:net";
import { connectPrometheus, parseAnswer } from "../handler/edges/prometheus.js";
import { resourceReader } from "../handler/measure/resources.js";
import { withUsage } from "../handler/measure/measurement.js";
import { jobPod } from "./support/pods.js";
import { createHandler, type Outcome } from "../handler/measure/handle.js";
import { memoryLedger } from "../handler/measure/ledger.js";
import { createLogger, silentLogger } from "../handler/edges/log.js";
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

/** A number Prometheus might write: sound, huge, signed zero, not finite, not a number at all. */
const promNumber = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: 0, noNaN: true }).map(String) },
  fc.double().map(String),
  fc.double({ min: 1e300, noNaN: true }).map(String),
  fc.constantFrom("NaN", "+Inf", "-Inf", "1e309", "1.7976931348623157e308", "-1.7976931348623157e308", "-0", "0x1F", " 7 ", "", "1_000", "5e-324", "null"),
  fc.bigInt().map(String),
  fc.string({ unit: "binary", maxLength: 20 }),
);
const promSample = fc.record(
  { metric: fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.anything())), fc.anything()), value: fc.oneof(fc.tuple(fc.double(), promNumber), fc.anything()) },
  { requiredKeys: [] },
);
/** Whatever Prometheus might answer: an instant vector of any numbers, another result type, an error, any JSON, any text. */
const promAnswer = fc.oneof(
  { weight: 24, arbitrary: fc.array(promNumber, { minLength: 1, maxLength: 2 }).map((values) => JSON.stringify({ status: "success", data: { resultType: "vector", result: values.map((value) => ({ metric: {}, value: [1_700_000_000, value] })) } })) },
  { weight: 4, arbitrary: fc.record({ status: fc.constantFrom("success", "error"), data: fc.record({ resultType: fc.constantFrom("vector", "vector", "matrix", "scalar"), result: fc.array(promSample, { maxLength: 4 }) }) }).map((answer) => JSON.stringify(answer)) },
  { weight: 1, arbitrary: fc.json() },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
);

/** One log line as the project writes it: short, one line, nothing unprintable left raw. */
function assertPlainLogLine(line: string): void {
  assert.ok(line.length <= 1024, `a log line of ${line.length} characters`);
  assert.equal(unprintable(line.replace(/\n$/, "")), undefined, line);
  assert.doesNotMatch(line, /[\u00ad\u061c\u200b-\u200f\u2060-\u2064]/u, line);
  JSON.parse(line);
}

describe(`properties of Prometheus' answers (${RUNS} cases)`, () => {
  test("whatever Prometheus answers, the reader never throws, sends only finite numbers and logs only short plain lines", async () => {
    const pod = jobPod();
    let measured = 0;
    await fc.assert(
      fc.asyncProperty(fc.tuple(promAnswer, promAnswer, promAnswer, promAnswer), async (texts) => {
        const lines: string[] = [];
        const log = createLogger("debug", (line) => lines.push(line));
        const answers = texts.map((text) => parseAnswer(text));
        let asked = 0;
        const read = resourceReader({ query: async () => answers[asked++ % 4]!, timeoutMs: 1000, scrapeIntervalMs: 30_000, warn: (message, fields) => log.warn(message, fields) });
        const usage = await read(pod, false);
        assert.ok(usage !== undefined);
        if ("cpu_time" in usage.metrics) measured++;
        const message = withUsage({ event: "MEASUREMENT", param: { metrics: { duration: { value: 42, unit: "s" }, perf: { value: 1 / 42, unit: "1/s" } }, annotations: { resources: "{}" } } }, usage);
        const sent = JSON.parse(JSON.stringify(message)) as { param: { metrics: Record<string, { value: unknown }> } };
        assertSoundMeasurement(sent);
        for (const [name, metric] of Object.entries(sent.param.metrics)) assert.ok(typeof metric.value === "number" && Number.isFinite(metric.value) && metric.value >= 0, `${name}: ${JSON.stringify(metric.value)}`);
        for (const line of lines) assertPlainLogLine(line);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    assert.ok(measured >= RUNS / 20, `only ${measured} of ${RUNS} cases reached the metrics`);
  });

  test("over HTTP, whatever the status and body: every query resolves, with our words only", async () => {
    let answer = { status: 200, body: "" };
    const prometheus = http.createServer((_request, response) => response.writeHead(answer.status, { "content-type": "application/json" }).end(answer.body));
    await new Promise<void>((resolve) => prometheus.listen(0, "127.0.0.1", resolve));
    const query = connectPrometheus({ url: `http://127.0.0.1:${(prometheus.address() as AddressInfo).port}`, timeoutMs: 5000, scrapeIntervalMs: 30_000 });
    try {
      await fc.assert(
        fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: fc.constant(200) }, { weight: 1, arbitrary: fc.integer({ min: 200, max: 599 }) }), promAnswer, async (status, body) => {
          answer = { status, body };
          const result = await query("up", 1_700_000_000, AbortSignal.timeout(5000));
          if (result.ok) {
            for (const sample of result.samples) assert.ok(Number.isFinite(sample.value), String(sample.value));
          } else {
            assert.match(result.reason, /^(Prometheus answered \d{3}|Prometheus' answer is not JSON|Prometheus' answer is not a successful instant vector)$/);
          }
        }),
        { numRuns: Math.max(50, Math.floor(RUNS / 5)), seed: SEED },
      );
    } finally {
      prometheus.close();
      prometheus.closeAllConnections();
    }
  });
});

describe(`properties of kubeconfig fields (${RUNS} cases each)`, () => {
  const AUDIENCE = "serving.knative.dev/service/optune-servo/servo-k8s-multijob";
  const SENDER = "system:serviceaccount:batch:job-pods-oidc-sources.knative.dev-apiserversource";
  const printable = (text: string) => /^[\x20-\x7e…]*$/.test(text);
  /** Where a call to `url` goes: refused (not a URL, not http(s)), or a host without brackets (an IPv6 literal as such), under a path prefix without a trailing slash. */
  const assertEndpoint = (url: string) => {
    let endpoint;
    try {
      endpoint = apiEndpoint(url);
    } catch (error) {
      assert.ok(error instanceof Error && (error instanceof TypeError || /not an https:\/\/ URL/.test(error.message)), String(error));
      return;
    }
    assert.ok(["http:", "https:"].includes(endpoint.protocol), endpoint.protocol);
    assert.ok(!endpoint.hostname.includes("[") && !endpoint.hostname.includes("]"), endpoint.hostname);
    assert.equal(net.isIPv6(endpoint.hostname), new URL(url).hostname.startsWith("["), url);
    assert.ok(endpoint.basePath === "" || (endpoint.basePath.startsWith("/") && !endpoint.basePath.endsWith("/")), endpoint.basePath);
  };
  const anyValue = fc.oneof(hostileText, fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.array(hostileText, { maxLength: 3 }), fc.dictionary(hostileText, hostileText, { maxKeys: 3 }));

  test("any server URL: the request goes to a host without brackets (an IPv6 literal as such), under a path prefix without a trailing slash", () => {
    const server = fc.oneof(
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      fc.tuple(fc.ipV6(), fc.integer({ min: 1, max: 65535 }), fc.constantFrom("", "/", "/k8s/clusters/c-1", "/a/")).map(([ip, port, path]) => `https://[${ip}]:${port}${path}`),
      hostileText.map((text) => `https://${text}`),
      hostileText,
    );
    fc.assert(
      fc.property(server, assertEndpoint),
      { numRuns: RUNS, seed: SEED },
    );
  });

  test("any exec plugin output: a credential that can be sent, or an error whose message quotes nothing of it", () => {
    const status = fc.record({ token: anyValue, clientCertificateData: anyValue, clientKeyData: anyValue, expirationTimestamp: fc.oneof(anyValue, fc.date({ noInvalidDate: true }).map((date) => date.toISOString())) }, { requiredKeys: [] });
    const output = fc.oneof(
      hostileText,
      fc.json(),
      status.map((fields) => JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: fields })),
      fc.string({ minLength: 1, maxLength: 64 }).map((token) => JSON.stringify({ status: { token } })),
    );
    fc.assert(
      fc.property(output, (printed) => {
        let parsed;
        try {
          parsed = parseExecCredential(printed);
        } catch (error) {
          assert.ok(error instanceof Error && printable(error.message) && error.message.length < 200, String(error));
          return;
        }
        const { credential, until } = parsed;
        assert.ok(credential.token !== undefined || (credential.cert !== undefined && credential.key !== undefined));
        if (credential.token !== undefined) http.validateHeaderValue("authorization", `Bearer ${credential.token}`);
        assert.ok(!Number.isNaN(until));
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  test("any bearer token: reviewed only when its claims name our audience, a live expiry and a sender; a refusal says why in printable words", async () => {
    const part = (value: unknown) => Buffer.from(JSON.stringify(value) ?? "null").toString("base64url");
    const claims = fc.record({ aud: fc.oneof(fc.constantFrom(AUDIENCE, [AUDIENCE], ["other", AUDIENCE]), anyValue), exp: fc.oneof(fc.integer({ min: 0, max: 5_000_000_000 }), anyValue), sub: fc.oneof(fc.constant(SENDER), anyValue) }, { requiredKeys: [] });
    const token = fc.oneof(hostileText, fc.string({ unit: "grapheme-ascii", minLength: 16 }), claims.map((payload) => `${part({ alg: "RS256" })}.${part(payload)}.c2ln`), anyValue.map((payload) => `${part({ alg: "RS256" })}.${part(payload)}.c2ln`));
    const reviewed: string[] = [];
    const authenticate = createEventAuthenticator({ audience: AUDIENCE, senders: new Set([SENDER]), reviewer: { review: async (given) => (reviewed.push(given), { authenticated: false, reason: "the token is not valid" }) } });
    await fc.assert(
      fc.asyncProperty(token, async (given) => {
        reviewed.length = 0;
        const result = await authenticate(`Bearer ${given}`);
        assert.equal(result.ok, false);
        if (!result.ok) assert.ok(printable(result.reason), result.reason);
        if (reviewed.length === 0) return;
        const payload = unverifiedClaims(given)!;
        const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
        assert.ok(audiences.includes(AUDIENCE) && payload.sub === SENDER && typeof payload.exp === "number" && payload.exp * 1000 > Date.now() - 120_000, JSON.stringify(payload));
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  test("any kubeconfig user and cluster: the client loads it or refuses it, and a rotating credential taken over leaves the client no exec to run", () => {
    const user = fc.record({ token: anyValue, exec: fc.oneof(anyValue, fc.record({ apiVersion: anyValue, command: anyValue, args: anyValue, env: fc.oneof(anyValue, fc.array(fc.record({ name: anyValue, value: anyValue }), { maxLength: 2 })) }, { requiredKeys: [] })), "auth-provider": fc.oneof(anyValue, fc.record({ name: fc.oneof(fc.constant("tokenFile"), anyValue), config: fc.oneof(anyValue, fc.record({ tokenFile: anyValue })) }, { requiredKeys: [] })) }, { requiredKeys: [] });
    const cluster = fc.record({ server: fc.oneof(fc.webUrl(), fc.ipV6().map((ip) => `https://[${ip}]:6443`), hostileText, anyValue), "proxy-url": anyValue, "insecure-skip-tls-verify": anyValue }, { requiredKeys: [] });
    fc.assert(
      fc.property(user, cluster, (userFields, clusterFields) => {
        const config = new KubeConfig();
        const document = { apiVersion: "v1", kind: "Config", clusters: [{ name: "c", cluster: clusterFields }], users: [{ name: "u", user: userFields }], contexts: [{ name: "c", context: { cluster: "c", user: "u" } }], "current-context": "c" };
        try {
          config.loadFromString(JSON.stringify(document));
        } catch (error) {
          assert.ok(error instanceof Error, String(error));
          return;
        }
        const source = takeOverCredentials(config, { timeoutMs: 1000 });
        if (source !== undefined) {
          assert.equal(config.getCurrentUser()?.exec, undefined);
          assert.equal(config.getCurrentUser()?.authProvider, undefined);
        }
        const server = config.getCurrentCluster()?.server;
        if (typeof server === "string") assertEndpoint(server);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

describe(`properties of check's remote text (${RUNS} cases)`, () => {
  // Whatever the API server (or Optune's host) answers, wherever its text lands, `check` prints
  // only printable lines within the clip, as text or as JSON, and never throws.
  const remoteText = fc.oneof(hostileText, hostileText.map((text) => text.repeat(2000)));
  const NOW = Date.parse("2026-12-01T12:00:00Z");
  /** One answer that has every shape check reads (version, API list, object, list, Secret, webhook), each text hostile. */
  const universal = (t: readonly string[]) => ({
    gitVersion: t[0],
    groups: [{ versions: [{ groupVersion: t[1] }, { groupVersion: "serving.knative.dev/v1" }, { groupVersion: "sources.knative.dev/v1" }] }],
    metadata: { name: t[2], labels: { "app.kubernetes.io/version": t[3] } },
    spec: {
      mode: t[4],
      replicas: t[5],
      sink: { uri: t[6], ref: { kind: t[7], name: t[2] } },
      template: { spec: { containers: [{ env: [{ name: "OPTUNE_URL", value: t[6] }, { name: "OPTUNE_APP_ID", value: t[7] }, { name: "OPTUNE_AUTH_TOKEN", valueFrom: { secretKeyRef: { name: t[0], key: t[1] } } }] }] } },
    },
    status: { allowed: t[8] === "", availableReplicas: t[4], conditions: [{ type: "Ready", status: t[5], reason: t[6], message: t[7] }, { type: "SufficientPermissions", status: "True" }] },
    items: [{ metadata: { name: t[3], annotations: { "optune.ai/measurement": t[8] } }, spec: { containers: [{ name: t[2], env: [{ name: "JOBID", value: t[1] }] }] }, status: { phase: "Succeeded", containerStatuses: [{ state: { terminated: { finishedAt: new Date(NOW - 20 * 60_000).toISOString() } } }] } }],
    data: { [t[4]!]: "eA==", "tls.crt": Buffer.from(t[5]!).toString("base64") },
    webhooks: [{ failurePolicy: t[6], clientConfig: { caBundle: t[7] } }],
  });
  const fault = fc.constantFrom("answer", "answer", "answer", "404", "500", "throw", "not json");

  test("any answer to any call: printable lines within the clip, text and JSON, and never a throw", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(remoteText, { minLength: 9, maxLength: 9 }), fc.array(fault, { minLength: 4, maxLength: 4 }), fc.boolean(), fc.boolean(), fc.constantFrom("knative", "openfaas") as fc.Arbitrary<"knative" | "openfaas">, async (texts, faults, pre, webhook, target) => {
        let call = 0;
        const answer = async (): Promise<{ status: number; body: unknown }> => {
          switch (faults[call++ % faults.length]) {
            case "404": return { status: 404, body: { message: texts[call % texts.length] } };
            case "500": return { status: 500, body: { message: texts[call % texts.length] } };
            case "throw": throw new Error(texts[call % texts.length]);
            case "not json": return { status: 200, body: undefined };
            default: return { status: call === 1 ? 200 : pre ? 201 : 200, body: universal(texts) };
          }
        };
        const api = { get: answer, post: async () => ({ ...(await answer()), status: 201 }) };
        const options: CheckOptions = { install: { ...DEFAULT_OPTIONS, ...RELEASE, watch: ["batch"], target, webhook }, now: NOW, cliVersion: "0.2.0", ...(pre ? { pre: true } : {}) };
        const probe = async (url: string) => ({ url, resolves: texts[0] === "" ? (true as const) : texts[0]!, answers: texts[1]!, hello: texts[2]!, functionUrl: texts[3]! });
        const categories = runChecks(await gatherFacts(api, options, probe, texts[8]), options);
        const text = renderText(categories);
        for (const line of text.split("\n")) {
          assert.equal(unprintable(line), undefined, JSON.stringify(line.slice(0, 120)));
          assert.ok(line.length <= MAX_TEXT + 4, `a line of ${line.length} characters`);
        }
        const json = renderJson(categories);
        assert.equal(unprintable(json.replaceAll("\n", "")), undefined);
        for (const check of (JSON.parse(json) as { categories: Array<{ checks: Array<{ name: string; hint?: string }> }> }).categories.flatMap((category) => category.checks)) {
          for (const value of [check.name, check.hint ?? ""]) assert.ok(unprintable(value) === undefined && value.length <= MAX_TEXT, JSON.stringify(value.slice(0, 120)));
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
