// What a CloudEvent means to us: a Pod change from an ApiServerSource (Resource or Reference
// mode), or something we do not handle.
import { MalformedEvent, type CloudEvent } from "./cloudevent.js";
import { clip, excerpt, isNamespaceName, isPodName, isRecord, podNamespace, type Pod } from "../jobs/pod.js";

export type PodAction = "add" | "update" | "delete";

export type PodEvent =
  /** Resource mode: `data` is the whole Pod object. */
  | { readonly kind: "resource"; readonly action: PodAction; readonly pod: Pod }
  /** Reference mode (the ApiServerSource default): `data` names the Pod. */
  | { readonly kind: "reference"; readonly action: PodAction; readonly namespace: string; readonly name: string }
  /** A PingSource tick: look for finished jobs the event stream missed. */
  | { readonly kind: "sweep" }
  | { readonly kind: "other"; readonly type: string };

const RESOURCE = "dev.knative.apiserver.resource.";
const REFERENCE = "dev.knative.apiserver.ref.";
const PING = "dev.knative.sources.ping";

export function interpretEvent(event: CloudEvent): PodEvent {
  const { type, data } = event;
  if (type.startsWith(RESOURCE)) {
    const action = podAction(type.slice(RESOURCE.length));
    if (action === undefined) return { kind: "other", type };
    if (!isRecord(data)) throw new MalformedEvent(`the data of a ${clip(type)} event must be a JSON object (the resource), got ${describe(data)}`);
    return { kind: "resource", action, pod: data as Pod };
  }
  if (type.startsWith(REFERENCE)) {
    const action = podAction(type.slice(REFERENCE.length));
    if (action === undefined) return { kind: "other", type };
    if (!isRecord(data) || typeof data.name !== "string" || typeof data.namespace !== "string") {
      throw new MalformedEvent(`the data of a ${clip(type)} event must be a JSON object with name and namespace`);
    }
    if (data.kind !== undefined && data.kind !== "Pod") return { kind: "other", type: `${clip(type)} (kind ${excerpt(data.kind)})` };
    // The name goes into a request path: "", "." or ".." would read the namespace's whole pod list.
    if (!isNamespaceName(data.namespace)) throw new MalformedEvent(`the namespace ${excerpt(data.namespace)} of a ${clip(type)} event is not a namespace name`);
    if (!isPodName(data.name)) throw new MalformedEvent(`the name ${excerpt(data.name)} of a ${clip(type)} event is not a pod name`);
    return { kind: "reference", action, namespace: data.namespace, name: data.name };
  }
  if (type === PING) return { kind: "sweep" };
  return { kind: "other", type };
}

/** The class of a CloudEvent type, for the events metric (a small fixed set). */
/** The namespace of the pod an event is about, as the event says (none for a ping or another type). */
export function eventNamespace(event: PodEvent): string | undefined {
  if (event.kind === "resource") return podNamespace(event.pod);
  return event.kind === "reference" ? event.namespace : undefined;
}

export function eventClass(type: string): "resource" | "reference" | "ping" | "other" {
  if (type.startsWith(RESOURCE)) return "resource";
  if (type.startsWith(REFERENCE)) return "reference";
  return type === PING ? "ping" : "other";
}

/** A Pod as the update event an ApiServerSource in Resource mode sends about it. */
export function podUpdateEvent(pod: object, id: string, source: string): CloudEvent {
  return { specversion: "1.0", id, source, type: `${RESOURCE}update`, datacontenttype: "application/json", data: pod };
}

function podAction(suffix: string): PodAction | undefined {
  return suffix === "add" || suffix === "update" || suffix === "delete" ? suffix : undefined;
}

function describe(value: unknown): string {
  if (value === undefined) return "no data";
  if (Array.isArray(value)) return "an array";
  if (Buffer.isBuffer(value)) return "bytes that are not JSON";
  return value === null ? "null" : `a ${typeof value}`;
}
