// The CustomResourceDefinitions of the projects whose objects `manifests` writes (Knative Serving
// and Eventing, cert-manager, prometheus-operator), taken from their own Go modules, applied to a
// real API server and waited for until they are Established, so strict field validation checks
// every generated document against the real schemas.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { crdFolders } from "./components.js";
import type { RealApiServer } from "./apiserver.js";

interface Crd {
  readonly kind: string;
  readonly metadata: { readonly name: string };
}

/** Every CustomResourceDefinition in the YAML files of `dir`. */
export function readCrds(dir: string): Crd[] {
  const crds: Crd[] = [];
  for (const file of readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).sort()) {
    for (const document of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      const value = document.toJS() as Crd | null;
      if (value?.kind === "CustomResourceDefinition") crds.push(value);
    }
  }
  return crds;
}

/** Applies the CRDs of `projects` (default: all) and waits until the API server serves them. Returns their names. */
export async function applyCrds(server: RealApiServer, projects?: readonly string[]): Promise<string[]> {
  const names: string[] = [];
  for (const [project, dir] of Object.entries(crdFolders())) {
    if (projects !== undefined && !projects.includes(project)) continue;
    if (dir === undefined) throw new Error(`the ${project} module is not downloaded: run test/cluster/install.sh`);
    for (const crd of readCrds(dir)) {
      const answer = await server.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
      if (answer.status !== 201 && answer.status !== 409) throw new Error(`${project} CRD ${crd.metadata.name}: ${answer.status} ${String(answer.body?.message).slice(0, 400)}`);
      names.push(crd.metadata.name);
    }
  }
  const deadline = Date.now() + 60_000;
  for (const name of names) {
    for (;;) {
      const answer = await server.request("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const established = (answer.body?.status?.conditions as Array<{ type: string; status: string }> | undefined)?.some((condition) => condition.type === "Established" && condition.status === "True");
      if (established) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established within 60 s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return names;
}

/** Deletes the CRDs named (and so every object of their kinds). */
export async function deleteCrds(server: RealApiServer, names: readonly string[]): Promise<void> {
  for (const name of names) await server.request("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
}
