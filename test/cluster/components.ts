// Where test/cluster/install.sh put the real components: the versions come from components.env
// (the one place they are named), the folder from SERVO_COMPONENTS or the user's cache, outside
// the checkout so a fresh clone finds them again. Each binary can also be given by its own variable
// (KUBE_APISERVER, ETCD, KWOK, ...), e.g. to try a build of your own.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(new URL("../../../test/cluster/", import.meta.url));

/** components.env as a map: NAME=VALUE lines, # comments. */
export function readVersions(text: string): Readonly<Record<string, string>> {
  const versions: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Z_]+)=(\S+)\s*$/.exec(line.trim());
    if (match !== null) versions[match[1]!] = match[2]!;
  }
  return Object.freeze(versions);
}

export const VERSIONS = readVersions(readFileSync(join(HERE, "components.env"), "utf8"));
const version = (name: string): string => {
  const value = VERSIONS[name];
  if (value === undefined) throw new Error(`test/cluster/components.env names no ${name}`);
  return value;
};

export const COMPONENTS_DIR = process.env.SERVO_COMPONENTS ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "servo-k8s-multijob");

export type KubernetesRelease = "newest" | "oldest";

export interface ControlPlaneBinaries {
  readonly version: string;
  readonly apiserver: string;
  readonly controllerManager: string;
  readonly scheduler: string;
}

export function kubernetes(release: KubernetesRelease = "newest"): ControlPlaneBinaries {
  const ver = version(release === "newest" ? "KUBERNETES_NEWEST" : "KUBERNETES_OLDEST");
  const dir = join(COMPONENTS_DIR, `kubernetes-${ver}`);
  const own = release === "newest" ? process.env : {};
  return {
    version: ver,
    apiserver: own.KUBE_APISERVER ?? join(dir, "kube-apiserver"),
    controllerManager: own.KUBE_CONTROLLER_MANAGER ?? join(dir, "kube-controller-manager"),
    scheduler: own.KUBE_SCHEDULER ?? join(dir, "kube-scheduler"),
  };
}

/** kubectl of the newest release: the README's lines that pipe to kubectl run with it. */
export const KUBECTL = process.env.KUBECTL ?? join(COMPONENTS_DIR, `kubectl-${version("KUBERNETES_NEWEST")}`, "kubectl");
export const ETCD = process.env.ETCD ?? join(COMPONENTS_DIR, `etcd-${version("ETCD")}`, "etcd");
export const KWOK = process.env.KWOK ?? join(COMPONENTS_DIR, `kwok-${version("KWOK")}`, "kwok");
export const RECEIVE_ADAPTER = process.env.APISERVER_RECEIVE_ADAPTER ?? join(COMPONENTS_DIR, `knative-eventing-${version("KNATIVE_EVENTING")}`, "apiserver_receive_adapter");
export const CONFORMANCE = process.env.CLOUDEVENTS_CONFORMANCE ?? join(COMPONENTS_DIR, `cloudevents-conformance-${version("CLOUDEVENTS_CONFORMANCE")}`, "cloudevents");

/** The folder of a Go module in the module cache (install.sh downloaded it), or undefined. */
export function moduleDir(module: string, env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  const goModCache = env.GOMODCACHE ?? goEnv("GOMODCACHE");
  if (goModCache === undefined) return undefined;
  // The module cache writes upper-case letters as !lower-case.
  const dir = join(goModCache, module.replace(/[A-Z]/g, (letter) => `!${letter.toLowerCase()}`));
  return existsSync(dir) ? dir : undefined;
}

let goModCache: string | undefined | null = null;
function goEnv(name: "GOMODCACHE"): string | undefined {
  if (goModCache !== null) return goModCache;
  try {
    goModCache = execFileSync("go", ["env", name], { encoding: "utf8" }).trim() || undefined;
  } catch {
    goModCache = join(homedir(), "go", "pkg", "mod");
  }
  return goModCache;
}

/** The CRD folders of the projects whose objects `manifests` writes, from their own Go modules. */
export function crdFolders(): Readonly<Record<string, string | undefined>> {
  const folder = (module: string, versionName: string, sub: string) => {
    const dir = moduleDir(`${module}@${version(versionName)}`);
    return dir === undefined ? undefined : join(dir, sub);
  };
  return {
    "Knative Serving": folder("knative.dev/serving", "KNATIVE_SERVING", "config/core/300-resources"),
    "Knative Eventing": folder("knative.dev/eventing", "KNATIVE_EVENTING", "config/core/resources"),
    "cert-manager": folder("github.com/cert-manager/cert-manager", "CERT_MANAGER", "deploy/crds"),
    "prometheus-operator": folder("github.com/prometheus-operator/prometheus-operator", "PROMETHEUS_OPERATOR", "example/prometheus-operator-crd"),
  };
}

/** kwok's own node stages (the node is Ready and keeps its heartbeat); the pod stages are ours. */
export function kwokNodeStages(): string | undefined {
  const dir = moduleDir(`sigs.k8s.io/kwok@${version("KWOK")}`);
  return dir === undefined ? undefined : join(dir, "kustomize/stage/node");
}

/** Why the real tier cannot run here, or undefined when it can. */
export function missingComponents(release: KubernetesRelease = "newest", more: readonly string[] = []): string | undefined {
  const binaries = kubernetes(release);
  const wanted = [binaries.apiserver, binaries.controllerManager, binaries.scheduler, ETCD, KWOK, ...more];
  const missing = wanted.filter((path) => !existsSync(path));
  const folders = { ...crdFolders(), kwok: kwokNodeStages() };
  for (const [name, dir] of Object.entries(folders)) if (dir === undefined || !existsSync(dir)) missing.push(`the ${name} module`);
  return missing.length === 0 ? undefined : `${missing.join(", ")} not found: run test/cluster/install.sh (it builds them from their Go modules)`;
}

/** Throws under REQUIRE_CLUSTER=1 (CI) when a component is missing; otherwise the skip reason. */
export function skipUnlessInstalled(release: KubernetesRelease = "newest", more: readonly string[] = []): string | false {
  const missing = missingComponents(release, more);
  if (missing !== undefined && process.env.REQUIRE_CLUSTER === "1") throw new Error(`REQUIRE_CLUSTER=1, but ${missing}`);
  return missing === undefined ? false : `the real cluster tier: ${missing}`;
}
