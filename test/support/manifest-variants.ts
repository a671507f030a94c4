// The `manifests` variants every check runs over: the offline schemas (test/manifests.test.ts) and
// the real API server with the real CRDs and strict field validation (test/cluster/manifests.test.ts).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_OPTIONS, type ManifestOptions, type Release } from "../../handler/deploy/manifests.js";
import { REPOSITORY } from "./cli.js";

/** The package's version, as the CLI reads it, and an image built from it. */
export const PACKAGE_VERSION = (JSON.parse(readFileSync(join(REPOSITORY, "package.json"), "utf8")) as { version: string }).version;
export const RELEASE: Required<Release> = { image: `registry.example.com/servo-k8s-multijob:${PACKAGE_VERSION}`, version: PACKAGE_VERSION };
/** The defaults of `manifests` with that release: what `manifests --image IMAGE` builds. */
export const TEST_OPTIONS: ManifestOptions & Release = { ...DEFAULT_OPTIONS, ...RELEASE };

export const VARIANTS: ReadonlyArray<Partial<ManifestOptions>> = [
  {},
  { account: "acme.example.com" },
  { watch: ["batch", "etl", "ml"], account: "acme.example.com", selector: "batch.kubernetes.io/job-name" },
  { broker: true, account: "acme.example.com" },
  { webhook: true, account: "acme.example.com", watch: ["batch", "etl"] },
  { target: "openfaas" },
  { target: "openfaas", broker: true, webhook: true, account: "acme.example.com", namespace: "openfaas-servo" },
  { namespace: "servo", appId: "metadata/labels/app-id", selector: "team=ml,tier!=test,env in (prod,stage)", webhook: true },
  { podMonitor: true, webhook: true, account: "acme.example.com" },
  { podMonitor: true, target: "openfaas" },
  { eventAuth: true, broker: true, account: "acme.example.com" },
  { podMonitor: true, prometheusRules: true, prometheusUrl: "http://prometheus.monitoring.svc:9090", webhook: true, account: "acme.example.com" },
  { eventAuth: true, account: "acme.example.com", watch: ["batch", "etl"] },
  { target: "openfaas", openfaasEdition: "standard", eventAuth: true, account: "acme.example.com", watch: ["batch", "etl"] },
];
