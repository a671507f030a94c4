// The `manifests` command's flags, shared by the command line and the tests that regenerate example/.
export const MANIFEST_FLAGS = {
  namespace: { type: "string" },
  watch: { type: "string" },
  image: { type: "string" },
  account: { type: "string" },
  "token-secret": { type: "string" },
  "app-id": { type: "string" },
  target: { type: "string" },
  broker: { type: "boolean" },
  selector: { type: "string" },
  webhook: { type: "boolean" },
  "pod-monitor": { type: "boolean" },
  "event-auth": { type: "boolean" },
  "ingress-namespace": { type: "string" },
  "prometheus-namespace": { type: "string" },
  "prometheus-url": { type: "string" },
  "prometheus-rules": { type: "boolean" },
} as const;
