// `servo-k8s-multijob uninstall`, its pure part: which kinds `manifests` writes (where to look for
// them in the API), which of the objects found are to go, and the YAML for `kubectl delete -f -`.
// Found by the label every generated object carries, so no install flag is needed; a `--keep` file
// (the output of `manifests` just applied) turns the same listing into an upgrade's prune.
import { FUNCTION, PART_OF } from "./manifests.js";

/** Where a kind is listed: /api/v1/PLURAL or /apis/GROUP/VERSION/PLURAL, across all namespaces. */
export interface InstalledKind {
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
}

/**
 * Every kind `manifests` writes but Namespace: the servo's namespace holds the token Secret, which
 * `manifests` never writes, so uninstalling keeps it (test/manifests.test.ts checks the list is whole).
 */
export const INSTALLED_KINDS: readonly InstalledKind[] = [
  { apiVersion: "admissionregistration.k8s.io/v1", kind: "MutatingWebhookConfiguration", plural: "mutatingwebhookconfigurations" },
  { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicyBinding", plural: "validatingadmissionpolicybindings" },
  { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicy", plural: "validatingadmissionpolicies" },
  { apiVersion: "sources.knative.dev/v1", kind: "ApiServerSource", plural: "apiserversources" },
  { apiVersion: "sources.knative.dev/v1", kind: "PingSource", plural: "pingsources" },
  { apiVersion: "eventing.knative.dev/v1", kind: "Trigger", plural: "triggers" },
  { apiVersion: "eventing.knative.dev/v1", kind: "Broker", plural: "brokers" },
  { apiVersion: "eventing.knative.dev/v1alpha1", kind: "EventPolicy", plural: "eventpolicies" },
  { apiVersion: "serving.knative.dev/v1", kind: "Service", plural: "services" },
  { apiVersion: "apps/v1", kind: "Deployment", plural: "deployments" },
  { apiVersion: "policy/v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets" },
  { apiVersion: "v1", kind: "Service", plural: "services" },
  { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", plural: "networkpolicies" },
  { apiVersion: "cert-manager.io/v1", kind: "Certificate", plural: "certificates" },
  { apiVersion: "cert-manager.io/v1", kind: "Issuer", plural: "issuers" },
  { apiVersion: "monitoring.coreos.com/v1", kind: "PodMonitor", plural: "podmonitors" },
  { apiVersion: "monitoring.coreos.com/v1", kind: "PrometheusRule", plural: "prometheusrules" },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", plural: "rolebindings" },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", plural: "roles" },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings" },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", plural: "clusterroles" },
  { apiVersion: "v1", kind: "ServiceAccount", plural: "serviceaccounts" },
];

export const LABEL_SELECTOR = Object.entries(PART_OF).map(([key, value]) => `${key}=${value}`).join(",");

/** The list request for a kind: every namespace, only our objects. */
export function listPath(kind: InstalledKind): string {
  const base = kind.apiVersion.includes("/") ? `/apis/${kind.apiVersion}` : `/api/${kind.apiVersion}`;
  return `${base}/${kind.plural}?labelSelector=${encodeURIComponent(LABEL_SELECTOR)}`;
}

/** One object, as `kubectl delete -f -` needs it. */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
}

const NAME = /^[a-z0-9]([-a-z0-9.:]{0,251}[a-z0-9])?$/;

/** The objects of a list answer that are ours (the label checked again) and named as Kubernetes names things; the others are counted, never printed. */
export function objectsOf(kind: InstalledKind, answer: unknown): { readonly found: ObjectRef[]; readonly unnamed: number } {
  const items = typeof answer === "object" && answer !== null && Array.isArray((answer as { items?: unknown }).items) ? (answer as { items: unknown[] }).items : [];
  const found: ObjectRef[] = [];
  let unnamed = 0;
  for (const item of items) {
    const metadata = typeof item === "object" && item !== null ? (item as { metadata?: { name?: unknown; namespace?: unknown; labels?: Record<string, unknown> } }).metadata : undefined;
    if (metadata?.labels?.[Object.keys(PART_OF)[0]!] !== FUNCTION) continue;
    const { name, namespace } = metadata;
    if (typeof name !== "string" || !NAME.test(name) || (namespace !== undefined && (typeof namespace !== "string" || !NAME.test(namespace)))) {
      unnamed++;
      continue;
    }
    found.push({ apiVersion: kind.apiVersion, kind: kind.kind, name, ...(typeof namespace === "string" ? { namespace } : {}) });
  }
  return { found, unnamed };
}

const key = (ref: ObjectRef) => `${ref.apiVersion}/${ref.kind}/${ref.namespace ?? ""}/${ref.name}`;

/** What is to go: everything found, but what `keep` holds (an object in both is still wanted). */
export function toDelete(found: readonly ObjectRef[], keep: readonly ObjectRef[] = []): ObjectRef[] {
  const kept = new Set(keep.map(key));
  return found.filter((ref) => !kept.has(key(ref)));
}

/** The YAML for `kubectl delete -f -`: one short document per object, with a header that says what stays. */
export function renderUninstall(refs: readonly ObjectRef[], keeping: boolean): string {
  const header = [
    `# ${refs.length} object${refs.length === 1 ? "" : "s"} labelled ${LABEL_SELECTOR}${keeping ? " that the --keep file does not hold" : ""}: pipe to kubectl delete -f -`,
    "# Kept: the servo's namespace and the Optune token Secret in it (manifests writes neither); when you are done with them: kubectl delete namespace NAMESPACE",
  ];
  const documents = refs.map((ref) => [`apiVersion: ${ref.apiVersion}`, `kind: ${ref.kind}`, "metadata:", `  name: ${ref.name}`, ...(ref.namespace === undefined ? [] : [`  namespace: ${ref.namespace}`])].join("\n"));
  return `${header.join("\n")}\n${documents.map((document) => `---\n${document}\n`).join("")}`;
}
