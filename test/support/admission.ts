// Admission inputs as the API server sends them, a certificate made for the test, and the check
// that a patch really applies (with fast-json-patch, a maintained RFC 6902 implementation).
import tls from "node:tls";
import jsonpatch from "fast-json-patch";
import { generate } from "selfsigned";

/** A pod as the API server holds it at CREATE of a Job's pod: no name (only generateName), no uid, no status, no creationTimestamp. */
export function atCreate(pod: unknown): Record<string, unknown> {
  const copy = structuredClone(pod) as Record<string, unknown> & { metadata?: Record<string, unknown> };
  delete copy.status;
  if (typeof copy.metadata === "object" && copy.metadata !== null && !Array.isArray(copy.metadata)) {
    const { name, uid: _uid, creationTimestamp: _created, resourceVersion: _version, ...metadata } = copy.metadata;
    copy.metadata = { ...metadata, ...(metadata.generateName === undefined && typeof name === "string" ? { generateName: `${name.replace(/-[^-]+$/, "")}-` } : {}) };
  }
  return copy;
}

export interface ReviewOptions {
  readonly uid?: string;
  readonly operation?: string;
  readonly dryRun?: boolean;
  readonly namespace?: string;
  readonly resource?: string;
}

export function admissionReview(pod: unknown, options: ReviewOptions = {}): Record<string, unknown> {
  const namespace = options.namespace ?? (pod as { metadata?: { namespace?: string } }).metadata?.namespace ?? "batch";
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: options.uid ?? "705ab4f5-6393-11e8-b7cc-42010a800002",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: options.resource ?? "pods" },
      requestKind: { group: "", version: "v1", kind: "Pod" },
      namespace,
      name: "",
      operation: options.operation ?? "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:job-controller" },
      dryRun: options.dryRun ?? false,
      object: pod,
      oldObject: null,
      options: { kind: "CreateOptions", apiVersion: "meta.k8s.io/v1" },
    },
  };
}

/** Applies a base64 JSONPatch as the API server would: a path whose parent is missing is an error. */
export function applyBase64Patch(pod: unknown, patch: string): Record<string, unknown> {
  const operations = JSON.parse(Buffer.from(patch, "base64").toString("utf8")) as jsonpatch.Operation[];
  return jsonpatch.applyPatch(structuredClone(pod), operations, true, false).newDocument as Record<string, unknown>;
}

/** A self-signed certificate for 127.0.0.1 and localhost, made now. */
export async function makeCertificate(commonName = "servo-webhook.test"): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: "commonName", value: commonName }], {
    keySize: 2048,
    extensions: [{ name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] }],
  });
  return { cert: pems.cert, key: pems.private };
}

/** The certificate the server on `port` presents to a new connection (its SHA-256 fingerprint). */
export function presentedCertificate(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(port, "127.0.0.1", { rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.once("error", reject);
  });
}
