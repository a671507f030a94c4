import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CloudEvent as SdkEvent, HTTP } from "cloudevents";
import { decodeHttpRequest, MalformedEvent, structuredEvent, toBinaryRequest, type CloudEvent } from "../handler/measure/cloudevent.js";
import { interpretEvent } from "../handler/measure/pod-event.js";
import { jobPod } from "./support/pods.js";

const pod = jobPod();
const event: CloudEvent = {
  specversion: "1.0",
  id: "ca0166ea-6777-4bd0-a02a-47afc8ff5be0",
  source: "https://10.96.0.1:443",
  type: "dev.knative.apiserver.resource.update",
  subject: "/apis/v1/namespaces/batch/pods/resize-images-8kq2x",
  datacontenttype: "application/json",
  kind: "Pod",
  apiversion: "v1",
  name: "resize-images-8kq2x",
  namespace: "batch",
  data: pod,
};
const decode = (headers: Record<string, string>, body: string) => decodeHttpRequest(headers, Buffer.from(body));
const sdkBinary = (attributes: CloudEvent) => {
  const message = HTTP.binary(new SdkEvent(attributes, false));
  return decode(lower(message.headers as Record<string, string>), String(message.body));
};
/** The decoded events, every one a CloudEvent (these tests send no malformed batch item). */
const valid = (events: readonly (CloudEvent | MalformedEvent)[]): CloudEvent[] => events.map((e) => (e instanceof MalformedEvent ? assert.fail(e.message) : e));
const lower = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));

describe("CloudEvents HTTP binding", () => {
  test("binary mode, as the official SDK encodes it: attributes from ce-* headers, data from the body", () => {
    const { events, batch } = sdkBinary(event);
    assert.equal(batch, false);
    assert.equal(events.length, 1);
    const [decoded] = valid(events);
    assert.equal(decoded?.id, event.id);
    assert.equal(decoded?.type, event.type);
    assert.equal(decoded?.namespace, "batch");
    assert.deepEqual(decoded?.data, pod);
  });

  test("structured mode, as the official SDK encodes it", () => {
    const message = HTTP.structured(new SdkEvent(event, false));
    const { events } = decode(lower(message.headers as Record<string, string>), String(message.body));
    assert.equal(valid(events)[0]?.subject, event.subject);
    assert.deepEqual(valid(events)[0]?.data, pod);
  });

  test("structured mode with a charset parameter", () => {
    const { events } = decode({ "content-type": "application/cloudevents+json; charset=UTF-8" }, JSON.stringify(event));
    assert.equal(valid(events)[0]?.id, event.id);
  });

  test("batched mode: a JSON array of structured events", () => {
    const { events, batch } = decode({ "content-type": "application/cloudevents-batch+json" }, JSON.stringify([event, { ...event, id: "2" }]));
    assert.equal(batch, true);
    assert.deepEqual(valid(events).map((e) => e.id), [event.id, "2"]);
  });

  test("binary header values are percent-decoded; our encoder round-trips", () => {
    const odd = { ...event, subject: 'a "quoted" 100% ünïcode subject' };
    const request = toBinaryRequest(odd);
    assert.equal(request.headers["ce-subject"], "a%20%22quoted%22%20100%25%20%C3%BCn%C3%AFcode%20subject");
    assert.equal(valid(decode(request.headers, request.body).events)[0]?.subject, odd.subject);
  });

  test("structured data_base64 with a JSON content type is decoded", () => {
    const { data, ...attributes } = event;
    const decoded = structuredEvent({ ...attributes, data_base64: Buffer.from(JSON.stringify(data)).toString("base64") });
    assert.deepEqual(decoded.data, pod);
  });

  for (const [name, headers, body, message] of [
    ["a body that is not JSON (structured)", { "content-type": "application/cloudevents+json" }, '{"specversion":"1.0",', /body is not valid JSON/],
    ["a body that is not JSON (binary)", { "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t" }, "{nope", /body is not valid JSON/],
    ["a structured body that is an array", { "content-type": "application/cloudevents+json" }, "[]", /must be a JSON object/],
    ["a batch that is not an array", { "content-type": "application/cloudevents-batch+json" }, "{}", /JSON array/],
    ["no ce-* headers and no CloudEvents content type", { "content-type": "application/json" }, "{}", /not a CloudEvent/],
    ["a missing type", { "content-type": "application/cloudevents+json" }, JSON.stringify({ ...event, type: undefined }), /missing required CloudEvent attribute "type"/],
    ["a missing id (the SDK would invent one)", { "content-type": "application/cloudevents+json" }, JSON.stringify({ ...event, id: undefined }), /"id"/],
    ["an empty source", { "content-type": "application/cloudevents+json" }, JSON.stringify({ ...event, source: "" }), /"source"/],
    ["binary without ce-type", { "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "s" }, "{}", /"type"/],
    ["another specversion", { "content-type": "application/cloudevents+json" }, JSON.stringify({ ...event, specversion: "0.3" }), /specversion "0.3"/],
    ["an empty batch", { "content-type": "application/cloudevents-batch+json" }, "[]", /at least one CloudEvent/],
  ] as const) {
    test(`rejects ${name}`, () => {
      assert.throws(() => decode(headers, body), (error: Error) => error instanceof MalformedEvent && message.test(error.message));
    });
  }

  test("a bad batch item is decoded as its own MalformedEvent; the other items are events", () => {
    const { events } = decode({ "content-type": "application/cloudevents-batch+json" }, JSON.stringify([event, { ...event, id: 7 }, { ...event, id: "3" }]));
    assert.equal(events.length, 3);
    assert.ok(events[1] instanceof MalformedEvent);
    assert.equal(events[1].message, 'batch item 1: missing required CloudEvent attribute "id"');
    assert.deepEqual([events[0], events[2]].map((item) => (item instanceof MalformedEvent ? item.message : item?.id)), [event.id, "3"]);
  });
});

describe("what an event means", () => {
  test("resource events carry the pod", () => {
    for (const action of ["add", "update", "delete"] as const) {
      assert.deepEqual(interpretEvent({ ...event, type: `dev.knative.apiserver.resource.${action}` }), { kind: "resource", action, pod });
    }
  });

  test("reference events name the pod", () => {
    const ref = { ...event, type: "dev.knative.apiserver.ref.update", data: { apiVersion: "v1", kind: "Pod", name: "p", namespace: "batch" } };
    assert.deepEqual(interpretEvent(ref), { kind: "reference", action: "update", namespace: "batch", name: "p" });
  });

  test("a PingSource tick asks for a sweep", () => {
    assert.deepEqual(interpretEvent({ ...event, type: "dev.knative.sources.ping", data: { sweep: true } }), { kind: "sweep" });
  });

  test("other types are not ours", () => {
    assert.deepEqual(interpretEvent({ ...event, type: "com.example.build.finished" }), { kind: "other", type: "com.example.build.finished" });
    assert.deepEqual(interpretEvent({ ...event, type: "dev.knative.apiserver.resource.patch" }), { kind: "other", type: "dev.knative.apiserver.resource.patch" });
  });

  for (const [name, data] of [
    ["absent", undefined],
    ["an array", [pod]],
    ["a string", "pod"],
    ["null", null],
  ] as const) {
    test(`a resource event whose data is ${name} is malformed`, () => {
      assert.throws(() => interpretEvent({ ...event, data }), /must be a JSON object \(the resource\)/);
    });
  }

  test("a reference event without name or namespace is malformed", () => {
    assert.throws(() => interpretEvent({ ...event, type: "dev.knative.apiserver.ref.add", data: { kind: "Pod", name: "p" } }), MalformedEvent);
  });
});
