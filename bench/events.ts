// The traffic of the benchmark: real pod events (the example's job pod, padded to the 8.3 KB of a
// typical pod event), in the mixes an ApiServerSource sends.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type Stream = "mix" | "reported" | "ignored" | "sent" | "admit-nonjob" | "admit-job";
export type Mode = "binary" | "structured";

export interface WireRequest {
  readonly headers: Record<string, string>;
  readonly body: string;
}

const EXAMPLE = fileURLToPath(new URL("../../example/events/01-succeeded-job.json", import.meta.url));
const base = (JSON.parse(readFileSync(EXAMPLE, "utf8")) as { data: any }).data;

/** A finished job pod with this uid, as the API server would answer for it (the Kubernetes stand-in's pods). */
export function finishedJobPod(uid: string): any {
  return JSON.parse(JSON.stringify(pod("batch", true, true)).replaceAll("UID_SLOT", uid));
}

/** A pod of namespace `namespace`, with or without JOBID, running or terminated, its uid UID_SLOT (replaced per request). */
function pod(namespace: string, jobId: boolean, terminated: boolean): any {
  const copy = structuredClone(base);
  copy.metadata.namespace = namespace;
  copy.metadata.uid = "UID_SLOT";
  copy.metadata.name = "pod-UID_SLOT";
  const env = [...(jobId ? [{ name: "JOBID", value: "nightly-thumbnails" }] : []), ...Array.from({ length: 22 }, (_, i) => ({ name: `SETTING_${i}`, value: `value-${"x".repeat(40)}-${i}` }))];
  copy.spec.containers[0].env = env;
  const status = copy.status.containerStatuses[0];
  status.state = terminated ? status.state : { running: { startedAt: "2026-11-25T02:00:05Z" } };
  copy.status.phase = terminated ? "Succeeded" : "Running";
  return copy;
}

export function wire(data: unknown, mode: Mode): WireRequest {
  const attributes = { specversion: "1.0", id: "ID_SLOT", source: "https://10.96.0.1:443", type: "dev.knative.apiserver.resource.update", subject: "/apis/v1/namespaces/batch/pods/pod-UID_SLOT", time: "2026-11-25T02:01:40Z", kind: "Pod", apiversion: "v1", name: "pod-UID_SLOT", namespace: "batch" };
  if (mode === "structured") return { headers: { "content-type": "application/cloudevents+json" }, body: JSON.stringify({ ...attributes, datacontenttype: "application/json", data }) };
  const headers: Record<string, string> = { "content-type": "application/json" };
  for (const [name, value] of Object.entries(attributes)) headers[`ce-${name}`] = value;
  return { headers, body: JSON.stringify(data) };
}

/**
 * The requests of a stream, as templates whose UID_SLOT and ID_SLOT are filled per request:
 * mix — 9 in 10 events not about a finished job (another namespace, no app id, still running),
 * 1 in 10 a finished job with a uid never seen (so it is really sent); reported — every event for
 * one of 100 finished jobs that were reported already; ignored — only the 9 in 10; sent — only
 * finished jobs never seen (to find what a delivery costs).
 */
export function templates(stream: Stream, mode: Mode): Array<{ request: WireRequest; unique: boolean }> {
  if (stream === "admit-nonjob" || stream === "admit-job") return admissionTemplates(stream);
  const ignored = [pod("web", true, false), pod("batch", false, true), pod("batch", true, false)];
  if (stream === "reported") return [{ request: wire(pod("batch", true, true), mode), unique: false }];
  if (stream === "sent") return [{ request: wire(pod("batch", true, true), mode), unique: true }];
  const nine = Array.from({ length: 9 }, (_, i) => ({ request: wire(ignored[i % 3], mode), unique: false }));
  return stream === "ignored" ? nine : [...nine, { request: wire(pod("batch", true, true), mode), unique: true }];
}

/** A function that gives the next request of the stream; `prefix` keeps uids unique across runs. */
export function requestSource(stream: Stream, mode: Mode, prefix: string): () => WireRequest {
  const list = templates(stream, mode);
  let sequence = 0;
  return () => {
    const { request, unique } = list[sequence % list.length]!;
    sequence++;
    // Unique jobs get a fresh uid; the rest one of 100 (already reported, or not jobs at all).
    const uid = unique ? `${prefix}-${sequence}` : `${prefix.split("-")[0]}-${sequence % 100}`;
    const fill = (text: string) => text.replaceAll("UID_SLOT", uid).replaceAll("ID_SLOT", `${prefix}-e${sequence}`);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) headers[name] = fill(value);
    return { headers, body: fill(request.body) };
  };
}

/** AdmissionReviews of new pods: a pod that is not a job (no app id), or a job pod (JOBID, namespace batch) at CREATE. */
function admissionTemplates(stream: "admit-nonjob" | "admit-job"): Array<{ request: WireRequest; unique: boolean }> {
  const object = pod("batch", stream === "admit-job", false);
  delete object.status;
  delete object.metadata.uid;
  delete object.metadata.resourceVersion;
  object.metadata.name = undefined;
  object.metadata.generateName = "pod-";
  const review = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "UID_SLOT", kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" }, namespace: "batch", operation: "CREATE", dryRun: false, object } };
  return [{ request: { headers: { "content-type": "application/json" }, body: JSON.stringify(review) }, unique: true }];
}
