// `servo-k8s-multijob uninstall`, its edge: the kubeconfig, one list request per kind, the --keep
// file, and the printed YAML (uninstall.ts decides what goes).
import { readFileSync } from "node:fs";
import { checkLimits, connectApi } from "../check/connect.js";
import { findKubeconfig } from "../edges/kubernetes.js";
import { unprintableFlag } from "../edges/printable.js";
import { INSTALLED_KINDS, listPath, objectsOf, renderUninstall, toDelete, type ObjectRef } from "./uninstall.js";

type Values = Record<string, string | boolean | string[] | undefined>;

interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly usageError: (message: string) => number;
}

/** The objects a `manifests` output holds, by kind, namespace and name. */
export async function objectsInFile(path: string): Promise<ObjectRef[] | string> {
  const { parseAllDocuments } = await import("yaml");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    return `--keep: cannot read ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code ?? "error"}`;
  }
  const refs: ObjectRef[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) return `--keep: ${JSON.stringify(path)} is not YAML (${document.errors.length} errors)`;
    const object = document.toJS() as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    if (object === null) continue;
    const { apiVersion, kind, metadata } = object;
    if (typeof apiVersion !== "string" || typeof kind !== "string" || typeof metadata?.name !== "string") return `--keep: ${JSON.stringify(path)} holds a document that is not a Kubernetes object`;
    refs.push({ apiVersion, kind, name: metadata.name, ...(typeof metadata.namespace === "string" ? { namespace: metadata.namespace } : {}) });
  }
  if (refs.length === 0) return `--keep: ${JSON.stringify(path)} holds no object; keep the output of manifests`;
  return refs;
}

export async function runUninstall(values: Values, io: Io): Promise<number> {
  const unprintable = unprintableFlag(values);
  if (unprintable !== undefined) return io.usageError(unprintable);
  const source = findKubeconfig(process.env);
  if (source === undefined) return io.usageError("no Kubernetes configuration: set KUBECONFIG or create ~/.kube/config");
  const keep = typeof values.keep === "string" ? await objectsInFile(values.keep) : [];
  if (typeof keep === "string") return io.usageError(keep);
  const { get } = await connectApi(source, checkLimits());
  const found: ObjectRef[] = [];
  let unnamed = 0;
  for (const kind of INSTALLED_KINDS) {
    const path = listPath(kind);
    let answer: { status: number; body: unknown };
    try {
      answer = await get(path);
    } catch (error) {
      io.err(`servo-k8s-multijob uninstall: cannot list ${kind.kind} (${kind.apiVersion}): ${(error as Error).message.slice(0, 200)}\n`);
      return 1;
    }
    // Not served: that API (a CRD: Knative, cert-manager, prometheus-operator) is not installed, so nothing of that kind was made.
    if (answer.status === 404) continue;
    if (answer.status !== 200) {
      io.err(`servo-k8s-multijob uninstall: listing ${kind.kind} (${kind.apiVersion}) answered ${answer.status}; nothing printed, since a partial list would leave objects behind\n`);
      return 1;
    }
    const objects = objectsOf(kind, answer.body);
    found.push(...objects.found);
    unnamed += objects.unnamed;
  }
  if (unnamed > 0) io.err(`servo-k8s-multijob uninstall: ${unnamed} labelled object(s) whose names are not Kubernetes names were left out\n`);
  io.out(renderUninstall(toDelete(found, keep), typeof values.keep === "string"));
  return 0;
}
