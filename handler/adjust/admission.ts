// The admission.k8s.io/v1 AdmissionReview envelope (ADJUST.md section 2): decoded at the edge, and
// the response built in one place. The response always allows: this webhook never blocks a pod.
import { isRecord, text } from "../jobs/pod.js";
import type { PatchOperation } from "./patch.js";

export interface AdmissionRequest {
  readonly uid: string;
  readonly operation: string | undefined;
  /** The resource, e.g. {group: "", version: "v1", resource: "pods"}. */
  readonly resource: string | undefined;
  readonly namespace: string | undefined;
  /** The API server will not persist the object: no side effects (no call to Optune). */
  readonly dryRun: boolean;
  readonly object: unknown;
}

/** The body is not an AdmissionReview: answer 400. */
export class NotAdmissionReview extends Error {
  override readonly name = "NotAdmissionReview";
}

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

export function decodeAdmissionReview(value: unknown): AdmissionRequest {
  if (!isRecord(value)) throw new NotAdmissionReview("an AdmissionReview must be a JSON object");
  if (value.apiVersion !== ADMISSION_API_VERSION || value.kind !== "AdmissionReview") {
    throw new NotAdmissionReview(`expected apiVersion ${ADMISSION_API_VERSION} and kind AdmissionReview (admissionReviewVersions: [v1])`);
  }
  const request = value.request;
  if (!isRecord(request)) throw new NotAdmissionReview("the AdmissionReview has no request");
  const uid = text(request.uid);
  if (uid === undefined || uid === "" || uid.length > 256) throw new NotAdmissionReview("the AdmissionReview's request has no uid");
  const resource = isRecord(request.resource) ? `${text(request.resource.group) ?? ""}/${text(request.resource.resource) ?? ""}` : undefined;
  return {
    uid,
    operation: text(request.operation),
    resource,
    namespace: text(request.namespace),
    dryRun: request.dryRun === true,
    object: request.object,
  };
}

export interface AdmissionVerdict {
  readonly patch?: readonly PatchOperation[];
  readonly warnings?: readonly string[];
}

/** The AdmissionReview answered: same uid, allowed, and a base64 JSONPatch when there is one. */
export function admissionResponse(uid: string, verdict: AdmissionVerdict): object {
  const { patch, warnings } = verdict;
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: "AdmissionReview",
    response: {
      uid,
      allowed: true,
      ...(patch === undefined || patch.length === 0 ? {} : { patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") }),
      ...(warnings === undefined || warnings.length === 0 ? {} : { warnings }),
    },
  };
}
