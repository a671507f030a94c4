// Knative's ApiServerSource receive adapter (knative.dev/eventing/cmd/apiserver_receive_adapter,
// built by install.sh) as a plain process against the tier's API server, configured from an
// ApiServerSource document the way Knative's reconciler does it (eventing's
// pkg/reconciler/apiserversource: namespacesFromSelector, and resources/receive_adapter.go makeEnv):
// the namespaces (the source's own, or those its namespaceSelector matches), each resource's GVR
// (the kind lower-cased and pluralised, capitalised JSON keys as Go writes a GroupVersionResource)
// and label selector as a string, the mode; NAME, NAMESPACE, K_SINK; no leader election.
import { RECEIVE_ADAPTER } from "./components.js";
import type { RealApiServer } from "./apiserver.js";
import { startComponent, type Component } from "./process.js";

interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: ReadonlyArray<{ readonly key: string; readonly operator: string; readonly values?: readonly string[] }>;
}

export interface ApiServerSource {
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec: {
    readonly mode?: string;
    readonly resources: ReadonlyArray<{ readonly apiVersion: string; readonly kind: string; readonly selector?: LabelSelector }>;
    readonly namespaceSelector?: LabelSelector;
    readonly serviceAccountName?: string;
  };
}

/** A label selector as metav1.LabelSelectorAsSelector(...).String() writes it. */
export function selectorString(selector: LabelSelector | undefined): string {
  if (selector === undefined) return "";
  const parts: string[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) parts.push(`${key}=${value}`);
  for (const expression of selector.matchExpressions ?? []) {
    const values = [...(expression.values ?? [])].sort().join(",");
    switch (expression.operator) {
      case "Exists":
        parts.push(expression.key);
        break;
      case "DoesNotExist":
        parts.push(`!${expression.key}`);
        break;
      case "In":
        parts.push(`${expression.key} in (${values})`);
        break;
      case "NotIn":
        parts.push(`${expression.key} notin (${values})`);
        break;
      default:
        throw new Error(`label selector operator ${expression.operator}`);
    }
  }
  return parts.sort().join(",");
}

/** The resource of a kind, as meta.UnsafeGuessKindToResource guesses it (Pod → pods). */
function guessResource(kind: string): string {
  const lower = kind.toLowerCase();
  if (lower.endsWith("s")) return `${lower}es`;
  if (lower.endsWith("y")) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

/** K_SOURCE_CONFIG for `source`, watching `namespaces` (resolved by the caller from the selector). */
export function sourceConfig(source: ApiServerSource, namespaces: readonly string[]): string {
  const allNamespaces = source.spec.namespaceSelector !== undefined && Object.keys(source.spec.namespaceSelector.matchLabels ?? {}).length === 0 && (source.spec.namespaceSelector.matchExpressions ?? []).length === 0;
  const resources = source.spec.resources.map((resource) => {
    const [group, version] = resource.apiVersion.includes("/") ? resource.apiVersion.split("/") : ["", resource.apiVersion];
    const selector = selectorString(resource.selector);
    return { gvr: { Group: group, Version: version, Resource: guessResource(resource.kind) }, ...(selector === "" ? {} : { selector }) };
  });
  return JSON.stringify({ namespaces, allNamespaces, resources, ...(source.spec.mode === undefined ? {} : { mode: source.spec.mode }) });
}

export interface RunningAdapter {
  readonly component: Component;
  readonly env: Readonly<Record<string, string>>;
  stop(): Promise<void>;
}

/** Starts the adapter for `source` with `token` (the source's ServiceAccount's), sinking into `sink`. */
export async function startAdapter(server: RealApiServer, source: ApiServerSource, token: string, sink: string): Promise<RunningAdapter> {
  const namespace = source.metadata.namespace ?? "default";
  let namespaces = [namespace];
  if (source.spec.namespaceSelector !== undefined) {
    const selector = selectorString(source.spec.namespaceSelector);
    const answer = await server.request("GET", `/api/v1/namespaces${selector === "" ? "" : `?labelSelector=${encodeURIComponent(selector)}`}`);
    namespaces = (answer.body.items as Array<{ metadata: { name: string } }>).map((item) => item.metadata.name).sort();
  }
  const env = {
    NAME: source.metadata.name,
    NAMESPACE: namespace,
    K_SINK: sink,
    K_SOURCE_CONFIG: sourceConfig(source, namespaces),
    SYSTEM_NAMESPACE: "knative-eventing",
    METRICS_DOMAIN: "knative.dev/eventing",
    KUBECONFIG: server.kubeconfig(token, `source-${namespace}-${source.metadata.name}`),
  };
  const component = startComponent(`adapter-${namespace}`, RECEIVE_ADAPTER, ["--disable-ha"], { PATH: process.env.PATH, HOME: process.env.HOME, ...env });
  // It says nothing we may rely on when its watch is up, and sends nothing for what exists: the
  // caller waits for an event of a canary pod (round-robin.ts) before it counts on it.
  return { component, env, stop: () => component.stop() };
}
