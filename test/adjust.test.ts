// The adjusting half's pure core: quantities, DESCRIPTION, the check of an ADJUST, the patch (applied
// with a JSON Patch library to the pod as the API server holds it), and the command loop.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { admissionResponse, decodeAdmissionReview, NotAdmissionReview } from "../handler/adjust/admission.js";
import { commandLoop, MAX_QUESTIONS, parseCommand, type Exchange } from "../handler/adjust/command-loop.js";
import { adjustmentPatch, pointer } from "../handler/adjust/patch.js";
import { formatCpu, formatMemory, parseCpu, parseMemory } from "../handler/jobs/quantity.js";
import { admittedRanges } from "../handler/adjust/namespace-bounds.js";
import { checkAdjust, description, type Ranges } from "../handler/adjust/settings.js";
import type { DeliveryResult } from "../handler/edges/optune.js";
import type { Pod } from "../handler/jobs/pod.js";
import { settingsOf, type ContainerSettings } from "../handler/jobs/settings-annotation.js";
import { admissionReview, applyBase64Patch, atCreate } from "./support/admission.js";
import { jobPod, meshedJobPod } from "./support/pods.js";
import { applyPatch } from "../handler/adjust/apply-patch.js";
import { parseSampleSettings, sampleOptune } from "../handler/adjust/sample-answers.js";

const RANGES: Ranges = { cpu: { min: 0.1, max: 3.5, step: 0.001 }, mem: { min: 67108864, max: 1073741824, step: 4096 } };
const pod = (resources?: unknown) => atCreate(jobPod(resources === undefined ? {} : { resources })) as Pod;
const adjust = (settings: Record<string, unknown>, component = "worker", withState = true) => {
  const components = { [component]: { settings } };
  return withState ? { state: { application: { components } }, control: {} } : { application: { components } };
};

describe("quantities", () => {
  test("cpu: cores or millicores", () => {
    assert.deepEqual(["1.5", "1500m", "2", "250m", ".5", "0.001", "1e3", "-1", "abc", 2].map(parseCpu), [1.5, 1.5, 2, 0.25, 0.5, 0.001, undefined, undefined, undefined, undefined]);
    assert.deepEqual([1.5, 2, 0.1, 0.0015, 3.4999].map(formatCpu), ["1500m", "2", "100m", "2m", "3500m"]);
  });

  test("memory: bytes, binary and decimal suffixes, exponents", () => {
    assert.deepEqual(["536870912", "512Mi", "1Gi", "1G", "128k", "1e3", "1.5Ki", "12Xi", "-1", ""].map(parseMemory), [536870912, 536870912, 1073741824, 1e9, 128000, 1000, 1536, undefined, undefined, undefined]);
  });

  test("memory is written as a binary quantity when whole (512Mi, 1Gi, 4Ki), else in bytes", () => {
    assert.deepEqual([536870912, 1073741824, 4096, 67108864 + 4096, 402653184, 1000, 0].map(formatMemory), ["512Mi", "1Gi", "4Ki", "65540Ki", "384Mi", "1000", "0"]);
  });
});

describe("DESCRIPTION", () => {
  test("the job container's cpu and memory: its limit, else its request, else the range's minimum; metrics beside the application", () => {
    assert.deepEqual(description(pod({ limits: { cpu: "500m" }, requests: { cpu: "250m", memory: "256Mi" } }), "worker", RANGES), {
      application: {
        components: {
          worker: {
            settings: {
              cpu: { type: "range", unit: "cores", min: 0.1, max: 3.5, step: 0.001, value: 0.5 },
              mem: { type: "range", unit: "bytes", min: 67108864, max: 1073741824, step: 4096, value: 268435456 },
            },
          },
        },
      },
      metrics: { duration: { unit: "s" }, est_duration: { unit: "s" }, perf: { unit: "1/s" } },
    });
  });

  test("no resources: each value is null (unset), not the range's minimum the container does not sit at", () => {
    const settings = (description(pod(null), "worker", RANGES) as { application: { components: { worker: { settings: Record<string, { value: number | null }> } } } }).application.components.worker.settings;
    assert.deepEqual([settings.cpu?.value, settings.mem?.value], [null, null]);
  });

  test("a request for one resource only: that one has a value, the other is null", () => {
    const settings = (description(pod({ requests: { memory: "256Mi" } }), "worker", RANGES) as { application: { components: { worker: { settings: Record<string, { value: number | null }> } } } }).application.components.worker.settings;
    assert.deepEqual([settings.cpu?.value, settings.mem?.value], [null, 268435456]);
  });
});

describe("a job pod with a service mesh's proxy injected first", () => {
  for (const mesh of ["linkerd", "istio"] as const) {
    test(`${mesh}: DESCRIPTION and the patch are about the job's own container, not the proxy`, () => {
      const meshed = atCreate(meshedJobPod(mesh, "container")) as Pod;
      assert.deepEqual(description(meshed, "worker", RANGES), description(pod(), "worker", RANGES));
      const result = applyPatch(meshed, adjustmentPatch(meshed, [{ container: "worker", cpu: 1.5 }])) as { spec: { containers: Array<{ name: string; resources: { limits: Record<string, string> } }> } };
      assert.deepEqual(result.spec.containers.map((container) => [container.name, container.resources.limits.cpu]), [[`${mesh}-proxy`, "100m"], ["worker", "1500m"]]);
    });
  }
});

describe("checking an ADJUST", () => {
  test("cpu and mem within range and on step, under state or (as the old daemon sent it) without", () => {
    for (const withState of [true, false]) {
      assert.deepEqual(checkAdjust(adjust({ cpu: { value: 1.5 }, mem: { value: 536870912 } }, "worker", withState), pod(), RANGES), { ok: true, settings: [{ container: "worker", cpu: 1.5, mem: 536870912 }] });
    }
  });

  test("a float a hair off the step is on it", () => {
    assert.equal(checkAdjust(adjust({ cpu: { value: 0.1 + 0.2 } }), pod(), RANGES).ok, true);
  });

  for (const [label, param, message] of [
    ["an unknown component", adjust({ cpu: { value: 1 } }, "sidecar"), 'component "sidecar" is not a container of the pod'],
    ["an unknown setting", adjust({ replicas: { value: 2 } }), 'setting "replicas" of worker is not cpu or mem'],
    ["a value out of range", adjust({ cpu: { value: 4 } }), "worker cpu 4 is outside 0.1..3.5"],
    ["a value below the minimum", adjust({ mem: { value: 4096 } }), "worker mem 4096 is outside 67108864..1073741824"],
    ["a value off its step", adjust({ mem: { value: 536870913 } }), "worker mem 536870913 is not on the step 4096 from 67108864"],
    ["a value that is not a number", adjust({ cpu: { value: "1.5" } }), "worker cpu is not a number"],
    ["no components", { state: {} }, "ADJUST has no application.components"],
    ["no settings", adjust({}), "ADJUST sets nothing"],
  ] as const) {
    test(`refuses ${label}`, () => {
      assert.deepEqual(checkAdjust(param, pod(), RANGES), { ok: false, message });
    });
  }
});

describe("the patch", () => {
  const patched = (original: Pod, settings: readonly ContainerSettings[] = [{ container: "worker", cpu: 1.5, mem: 536870912 }]) =>
    applyBase64Patch(original, Buffer.from(JSON.stringify(adjustmentPatch(original, settings))).toString("base64")) as {
      metadata: { annotations: Record<string, string> };
      spec: { containers: Array<{ resources: { limits: Record<string, string>; requests: Record<string, string> } }> };
    };

  for (const [label, resources] of [
    ["no resources at all", null],
    ["limits only (requests defaulted equal by the API server)", { limits: { cpu: "2", memory: "1Gi" }, requests: { cpu: "2", memory: "1Gi" } }],
    ["requests only", { requests: { cpu: "250m" } }],
    ["both, and a GPU limit", { limits: { cpu: "500m", memory: "256Mi", "nvidia.com/gpu": "1" }, requests: { cpu: "250m", memory: "128Mi", "nvidia.com/gpu": "1" } }],
    ["an empty resources object", {}],
  ] as const) {
    test(`${label}: applies to the pod as held at CREATE; limits and requests set, requests <= limits, the annotation records it`, () => {
      const original = pod(resources);
      const result = patched(original);
      const { limits, requests } = result.spec.containers[0]!.resources;
      assert.deepEqual([limits.cpu, limits.memory, requests.cpu, requests.memory], ["1500m", "512Mi", "1500m", "512Mi"]);
      for (const name of Object.keys(requests)) {
        const parse = name === "cpu" ? parseCpu : parseMemory;
        if (limits[name] !== undefined && name !== "nvidia.com/gpu") assert.ok(parse(requests[name])! <= parse(limits[name])!, `${name} request <= limit`);
      }
      if (resources !== null && "limits" in resources && "nvidia.com/gpu" in resources.limits) assert.equal(limits["nvidia.com/gpu"], "1");
      assert.equal(result.metadata.annotations["optune.ai/settings"], '{"container":"worker","cpu":1.5,"mem":536870912}');
    });
  }

  test("only the adjusted setting changes; a pod with annotations keeps them", () => {
    const original = atCreate(jobPod({ annotations: { "done-at": "1795510920" }, resources: { limits: { cpu: "1", memory: "256Mi" }, requests: { cpu: "1", memory: "256Mi" } } })) as Pod;
    const result = patched(original, [{ container: "worker", cpu: 0.25 }]);
    assert.deepEqual(result.spec.containers[0]!.resources, { limits: { cpu: "250m", memory: "256Mi" }, requests: { cpu: "250m", memory: "256Mi" } });
    assert.deepEqual(result.metadata.annotations, { "done-at": "1795510920", "optune.ai/settings": '{"container":"worker","cpu":0.25}' });
  });

  test("the annotation key is written as a JSON Pointer (/ is ~1)", () => {
    assert.equal(pointer("optune.ai/settings"), "optune.ai~1settings");
    assert.equal(pointer("a~b/c"), "a~0b~1c");
    const operations = adjustmentPatch(atCreate(jobPod({ annotations: { x: "1" } })) as Pod, [{ container: "worker", cpu: 1 }]);
    assert.equal(operations.at(-1)?.path, "/metadata/annotations/optune.ai~1settings");
  });

  test("a MEASUREMENT of the patched pod reads the annotation back as compact JSON", () => {
    const result = patched(pod());
    assert.equal(settingsOf(result as Pod), '{"container":"worker","cpu":1.5,"mem":536870912}');
    const withLimit = (cpu: string): Pod => ({ metadata: { annotations: { "optune.ai/settings": '{"container": "worker",  "cpu": 2}' } }, spec: { containers: [{ name: "worker", resources: { limits: { cpu } } }] } });
    assert.equal(settingsOf(withLimit("2000m")), '{"container":"worker","cpu":2}');
    // Settings the container does not run with are not what it ran with: dropped.
    assert.equal(settingsOf(withLimit("500m")), undefined);
    for (const odd of ["not json", '{"cpu":1}', '{"container":"w","cpu":"1"}', "[]", "1"]) assert.equal(settingsOf({ metadata: { annotations: { "optune.ai/settings": odd } } }), undefined, odd);
  });
});

describe("the AdmissionReview envelope", () => {
  test("decodes a v1 review: uid, operation, resource, namespace, dryRun, object", () => {
    const review = admissionReview(pod(), { dryRun: true });
    assert.deepEqual(decodeAdmissionReview(review), { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", operation: "CREATE", resource: "/pods", namespace: "batch", dryRun: true, object: pod() });
  });

  for (const [label, value] of [
    ["not an object", []],
    ["v1beta1", { ...admissionReview(pod()), apiVersion: "admission.k8s.io/v1beta1" }],
    ["no request", { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }],
    ["no uid", { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { operation: "CREATE" } }],
  ] as const) {
    test(`refuses ${label}`, () => {
      assert.throws(() => decodeAdmissionReview(value), NotAdmissionReview);
    });
  }

  test("the response: same uid, allowed, a base64 JSONPatch and warnings only when there are some", () => {
    assert.deepEqual(admissionResponse("u1", {}), { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "u1", allowed: true } });
    const response = admissionResponse("u2", { patch: [{ op: "add", path: "/a", value: 1 }], warnings: ["optune: x"] }) as { response: Record<string, unknown> };
    assert.deepEqual(response.response, { uid: "u2", allowed: true, patchType: "JSONPatch", patch: Buffer.from('[{"op":"add","path":"/a","value":1}]').toString("base64"), warnings: ["optune: x"] });
  });
});

describe("the command loop", () => {
  /** Optune scripted: each WHATS_NEXT gets the next answer; every message is recorded. */
  function script(...answers: Array<DeliveryResult | string>) {
    const sent: Array<{ event: string; param: unknown }> = [];
    let index = 0;
    const exchange: Exchange = async (body) => {
      sent.push(body as { event: string; param: unknown });
      if ((body as { event: string }).event !== "WHATS_NEXT") return { ok: true, attempts: 1 };
      const next = answers[Math.min(index++, answers.length - 1)]!;
      return typeof next === "string" ? { ok: true, attempts: 1, answer: next } : next;
    };
    const run = () => commandLoop({ pod: pod(), component: "worker", ranges: RANGES, exchange, budgetMs: 5000 });
    return { run, sent, events: () => sent.map((message) => message.event) };
  }
  const ADJUST = JSON.stringify({ cmd: "ADJUST", param: adjust({ cpu: { value: 1.5 }, mem: { value: 536870912 } }) });

  test("DESCRIBE → DESCRIPTION, ADJUST → ADJUSTMENT {}, MEASURE → done with the settings", async () => {
    const { run, events, sent } = script('{"cmd":"DESCRIBE","param":{}}', ADJUST, '{"cmd":"MEASURE","param":{"metrics":["duration"],"control":{}}}');
    const result = await run();
    assert.deepEqual(events(), ["WHATS_NEXT", "DESCRIPTION", "WHATS_NEXT", "ADJUSTMENT", "WHATS_NEXT"]);
    assert.deepEqual(sent[0], { event: "WHATS_NEXT", param: null });
    assert.deepEqual(sent[3], { event: "ADJUSTMENT", param: {} });
    assert.deepEqual(result, { settings: [{ container: "worker", cpu: 1.5, mem: 536870912 }], commands: ["DESCRIBE", "ADJUST", "MEASURE"], refused: [] });
  });

  test("the last ADJUST wins; a refused one is answered failed and changes nothing", async () => {
    const refused = JSON.stringify({ cmd: "ADJUST", param: adjust({ cpu: { value: 9 } }) });
    const { run, sent } = script(ADJUST, refused, '{"cmd":"MEASURE"}');
    const result = await run();
    assert.deepEqual(result.settings, [{ container: "worker", cpu: 1.5, mem: 536870912 }]);
    assert.deepEqual(sent[3], { event: "ADJUSTMENT", param: { status: "failed", message: "worker cpu 9 is outside 0.1..3.5" } });
  });

  test("SLEEP: ask once more; a second SLEEP ends it", async () => {
    const { run, events } = script('{"cmd":"SLEEP","param":{"duration":60}}');
    assert.deepEqual(await run(), { commands: ["SLEEP", "SLEEP"], refused: [] });
    assert.deepEqual(events(), ["WHATS_NEXT", "WHATS_NEXT"]);
  });

  test("no body, {}, or no cmd: MEASURE; another command: done", async () => {
    for (const answer of ["", "{}", '{"param":{}}', '{"cmd":"RESTART"}']) {
      const { run, events } = script(answer);
      assert.equal((await run()).problem, undefined, answer);
      assert.deepEqual(events(), ["WHATS_NEXT"]);
    }
  });

  test("an answer that is not JSON, or not an object: a problem, no settings", async () => {
    for (const answer of ["<html>", "[1]", '{"cmd":7}']) {
      const result = await script(answer).run();
      assert.match(result.problem ?? "", /^sent (an answer that is not|a cmd that is not)/, answer);
      assert.equal(result.settings, undefined);
    }
  });

  // Optune was told ADJUSTMENT {} (applied): running the pod unchanged would credit the run to settings it never had.
  test("Optune failing (5xx, 401, unreachable, a timeout) after an acknowledged ADJUST: a problem, and the acknowledged settings are applied", async () => {
    for (const [failure, problem] of [
      [{ ok: false, attempts: 3, status: 503, error: "Optune answered 503 Service Unavailable" }, "answered 503 to WHATS_NEXT"],
      [{ ok: false, attempts: 1, status: 401, error: "Optune answered 401 Unauthorized" }, "answered 401 to WHATS_NEXT"],
      [{ ok: false, attempts: 3, error: "cannot reach Optune: ECONNREFUSED" }, "cannot be reached"],
      [{ ok: false, attempts: 2, error: "no answer from Optune within 5000 ms" }, "no answer within 5 s"],
    ] as const) {
      const result = await script(ADJUST, failure).run();
      assert.deepEqual([result.problem, result.settings], [problem, [{ container: "worker", cpu: 1.5, mem: 536870912 }]]);
    }
  });

  test("no MEASURE within the bound after an acknowledged ADJUST: the acknowledged settings are applied", async () => {
    const result = await script(ADJUST, '{"cmd":"DESCRIBE"}').run();
    assert.deepEqual([result.problem, result.settings], [`gave no MEASURE in ${MAX_QUESTIONS} questions`, [{ container: "worker", cpu: 1.5, mem: 536870912 }]]);
  });

  test("the ADJUSTMENT itself not accepted: Optune never heard they were applied, so nothing is", async () => {
    const sent: string[] = [];
    const exchange: Exchange = async (body) => {
      const { event } = body as { event: string };
      sent.push(event);
      if (event === "ADJUSTMENT") return { ok: false, attempts: 3, status: 503, error: "Optune answered 503" };
      return { ok: true, attempts: 1, answer: ADJUST };
    };
    const result = await commandLoop({ pod: pod(), component: "worker", ranges: RANGES, exchange, budgetMs: 5000 });
    assert.deepEqual([result.problem, result.settings, sent], ["answered 503 to ADJUSTMENT", undefined, ["WHATS_NEXT", "ADJUSTMENT"]]);
  });

  test("a command Optune invents is logged as other, never as it wrote it (it may reflect the token)", async () => {
    const result = await script(JSON.stringify({ cmd: `SECRET-TOKEN-123${"x".repeat(60_000)}` })).run();
    assert.deepEqual(result.commands, ["other"]);
  });

  test(`bounded: ${MAX_QUESTIONS} questions at most`, async () => {
    const { run, events } = script('{"cmd":"DESCRIBE"}');
    assert.equal((await run()).problem, `gave no MEASURE in ${MAX_QUESTIONS} questions`);
    assert.equal(events().filter((event) => event === "WHATS_NEXT").length, MAX_QUESTIONS);
  });

  test("parseCommand reads cmd and param", () => {
    assert.deepEqual(parseCommand('{"cmd":"SLEEP","param":{"duration":60}}'), { cmd: "SLEEP", param: { duration: 60 } });
  });
});

describe("what a namespace admits: Optune's ranges narrowed to its LimitRanges and ResourceQuotas", () => {
  const RANGES = { cpu: { min: 0.1, max: 3.5, step: 0.001 }, mem: { min: 67108864, max: 1073741824, step: 4096 } };
  const twoContainers = { spec: { containers: [{ name: "worker" }, { name: "sidecar", resources: { limits: { cpu: "250m", memory: "64Mi" }, requests: { cpu: "100m", memory: "64Mi" } } }] } } as Pod;
  const limitRange = (type: string, max: object, min?: object) => ({ spec: { limits: [{ type, max, ...(min === undefined ? {} : { min }) }] } });

  test("no LimitRange, no quota: the configured ranges, unchanged", () => {
    assert.deepEqual(admittedRanges(RANGES, { limitRanges: [], quotas: [] }, twoContainers, "worker"), { ranges: RANGES });
  });

  test("a container max and min bound both settings, on the configured step", () => {
    const result = admittedRanges(RANGES, { limitRanges: [limitRange("Container", { cpu: "1", memory: "512Mi" }, { cpu: "200m" })], quotas: [] }, twoContainers, "worker");
    assert.deepEqual(result, { ranges: { cpu: { min: 0.2, max: 1, step: 0.001 }, mem: { min: 67108864, max: 536870912, step: 4096 } } });
  });

  test("a pod max leaves what the other containers do not use; a quota what is not used yet", () => {
    const pod = admittedRanges(RANGES, { limitRanges: [limitRange("Pod", { cpu: "1250m" })], quotas: [] }, twoContainers, "worker");
    assert.ok("ranges" in pod && pod.ranges.cpu.max === 1);
    const quota = { metadata: { name: "team" }, status: { hard: { "requests.cpu": "2" }, used: { "requests.cpu": "1500m" } } };
    const bounded = admittedRanges(RANGES, { limitRanges: [], quotas: [quota] }, twoContainers, "worker");
    assert.ok("ranges" in bounded && bounded.ranges.cpu.max === 0.4, JSON.stringify(bounded));
  });

  test("a native sidecar counts in a pod max and a quota, as the API server counts it: 500m sidecar, pod max 2 → at most 1.5", () => {
    const withSidecar = { spec: { initContainers: [{ name: "log-shipper", restartPolicy: "Always", resources: { limits: { cpu: "500m" }, requests: { cpu: "500m" } } }, { name: "migrate", resources: { limits: { cpu: "3" }, requests: { cpu: "3" } } }], containers: [{ name: "worker" }] } } as Pod;
    const pod = admittedRanges(RANGES, { limitRanges: [limitRange("Pod", { cpu: "2" })], quotas: [] }, withSidecar, "worker");
    assert.ok("ranges" in pod && pod.ranges.cpu.max === 1.5, JSON.stringify(pod));
    const quota = { metadata: { name: "team" }, status: { hard: { "requests.cpu": "4" }, used: { "requests.cpu": "1" } } };
    const bounded = admittedRanges(RANGES, { limitRanges: [], quotas: [quota] }, withSidecar, "worker");
    assert.ok("ranges" in bounded && bounded.ranges.cpu.max === 2.5, JSON.stringify(bounded));
  });

  test("pod overhead counts", () => {
    const overhead = { spec: { overhead: { cpu: "250m" }, containers: [{ name: "worker" }] } } as Pod;
    const pod = admittedRanges(RANGES, { limitRanges: [limitRange("Pod", { cpu: "1" })], quotas: [] }, overhead, "worker");
    assert.ok("ranges" in pod && pod.ranges.cpu.max === 0.75, JSON.stringify(pod));
  });

  test("nothing left to admit: says why, and the pod is not tuned", () => {
    const full = { metadata: { name: "team" }, status: { hard: { "limits.memory": "1Gi" }, used: { "limits.memory": "1Gi" } } };
    const result = admittedRanges(RANGES, { limitRanges: [], quotas: [full] }, twoContainers, "worker");
    assert.ok("none" in result && /ResourceQuota team has 0 limits.memory left/.test(result.none), JSON.stringify(result));
  });
});

describe("admit's sample answers and the patch applied to the pod", () => {
  test("--adjust values: cores or millicores, memory quantities; anything else says what is expected", () => {
    assert.deepEqual(parseSampleSettings("cpu=1.5,mem=512Mi"), { cpu: 1.5, mem: 536870912 });
    assert.deepEqual(parseSampleSettings("cpu=250m"), { cpu: 0.25 });
    assert.match(String(parseSampleSettings("gpu=1")), /cpu and mem only/);
    assert.match(String(parseSampleSettings("cpu=1,cpu=2")), /twice/);
    assert.match(String(parseSampleSettings("mem=")), /cpu=CORES,mem=QUANTITY/);
    assert.match(String(parseSampleSettings("mem=-1")), /not a memory quantity/);
  });

  test("the scripted Optune: DESCRIBE, then ADJUST of the component the DESCRIPTION named, then MEASURE", () => {
    const answer = sampleOptune({ cpu: 2 });
    assert.equal(answer({ event: "WHATS_NEXT" }), '{"cmd":"DESCRIBE","param":{}}');
    assert.equal(answer({ event: "DESCRIPTION", param: { application: { components: { worker: {} } } } }), undefined);
    assert.deepEqual(JSON.parse(answer({ event: "WHATS_NEXT" }) ?? ""), { cmd: "ADJUST", param: { state: { application: { components: { worker: { settings: { cpu: { value: 2 } } } } } }, control: {} } });
    assert.equal(answer({ event: "ADJUSTMENT", param: {} }), undefined);
    assert.equal(JSON.parse(answer({ event: "WHATS_NEXT" }) ?? "").cmd, "MEASURE");
  });

  test("applyPatch: add into objects and arrays, remove, ~1 escapes; the input is not changed", () => {
    const pod = { metadata: { annotations: { "a/b": "x" } }, spec: { containers: [{ name: "w" }] } };
    const patched = applyPatch(pod, [
      { op: "add", path: "/spec/containers/0/resources", value: { limits: { cpu: "1" } } },
      { op: "remove", path: "/metadata/annotations/a~1b" },
      { op: "add", path: "/spec/containers/-", value: { name: "sidecar" } },
    ]);
    assert.deepEqual(patched, { metadata: { annotations: {} }, spec: { containers: [{ name: "w", resources: { limits: { cpu: "1" } } }, { name: "sidecar" }] } });
    assert.deepEqual(pod.metadata.annotations, { "a/b": "x" });
    assert.throws(() => applyPatch(pod, [{ op: "remove", path: "/status/phase" }]), /no \/status\/phase/);
  });
});
