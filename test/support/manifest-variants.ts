// The `manifests` variants every check runs over: the offline schemas (test/manifests.test.ts) and
// the real API server with the real CRDs and strict field validation (test/cluster/manifests.test.ts).
import type { ManifestOptions } from "../../handler/deploy/manifests.js";

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
