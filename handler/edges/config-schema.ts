// The environment the function reads, as a JSON Schema over the variables' text. ajv compiles it
// to plain code at build time (compile-config-schema.ts); config.ts turns the values into a Config.
// No keyword here may need ajv at run time (minLength does): the runtime image has no ajv.

const SECONDS = { type: "string", pattern: "^[0-9]{1,7}(\\.[0-9]+)?$", description: "must be a number of seconds, e.g. 10 or 2.5" };

const RANGE = { type: "string", pattern: "^\\s*[0-9.eE+]+\\s*,\\s*[0-9.eE+]+\\s*,\\s*[0-9.eE+]+\\s*$", description: 'must be min,max,step, e.g. "0.1,3.5,0.001"' };

// Each description completes the sentence "<VARIABLE> …" in the error message.
export const ENV_SCHEMA = {
  type: "object",
  properties: {
    OPTUNE_URL: { type: "string", pattern: "^https?://[^\\s]+$", description: "must be an http:// or https:// URL without spaces" },
    OPTUNE_ACCOUNT: { type: "string", pattern: "^\\S+$", description: "must be a non-empty account name without spaces" },
    OPTUNE_AUTH_TOKEN: { type: "string", pattern: "^[\\x21-\\x7e]{1,4096}$", description: "must be a non-empty token of at most 4096 visible ASCII characters (no spaces)" },
    OPTUNE_AUTH_TOKEN_FILE: { type: "string", pattern: "\\S", description: "must be the path of a file that holds the token" },
    POD_NAMESPACES: {
      type: "string",
      pattern: "^\\s*[a-z0-9][-a-z0-9]*\\s*(,\\s*[a-z0-9][-a-z0-9]*\\s*)*$",
      description: 'must be a comma-separated list of namespace names, e.g. "batch,batch-eu"',
    },
    OPTUNE_APP_ID: { type: "string", pattern: "\\S", description: 'must be a path such as "spec/containers/0/env/[JOBID]"' },
    PORT: { type: "string", pattern: "^[0-9]{1,5}$", description: "must be a TCP port number" },
    LOG_LEVEL: { type: "string", enum: ["debug", "info", "warn", "error"], description: "must be one of debug, info, warn, error" },
    OPTUNE_SEND_TIMEOUT: SECONDS,
    OPTUNE_SEND_DEADLINE: SECONDS,
    OPTUNE_SOURCE_RETRY_WINDOW: SECONDS,
    OPTUNE_DEDUPE: { type: "string", enum: ["annotation", "memory"], description: "must be annotation or memory" },
    OPTUNE_CLAIM_TTL: SECONDS,
    OPTUNE_SWEEP_MAX_AGE: SECONDS,
    OPTUNE_HOLD: SECONDS,
    OPTUNE_MAX_INFLIGHT: { type: "string", pattern: "^[0-9]{1,5}$", description: "must be a whole number of deliveries, e.g. 64" },
    KUBE_API_TIMEOUT: SECONDS,
    SHUTDOWN_TIMEOUT: SECONDS,
    WEBHOOK_PORT: { type: "string", pattern: "^[0-9]{1,5}$", description: "must be a TCP port number" },
    WEBHOOK_TLS_CERT_FILE: { type: "string", pattern: "\\S", description: "must be the path of the webhook's certificate (PEM)" },
    WEBHOOK_TLS_KEY_FILE: { type: "string", pattern: "\\S", description: "must be the path of the webhook's private key (PEM)" },
    OPTUNE_ADJUST_BUDGET: SECONDS,
    OPTUNE_EVENT_SENDERS: {
      type: "string",
      pattern: "^system:serviceaccount:[a-z0-9][-a-z0-9]{0,62}:[a-z0-9][-a-z0-9.]{0,252}(,system:serviceaccount:[a-z0-9][-a-z0-9]{0,62}:[a-z0-9][-a-z0-9.]{0,252}){0,63}$",
      description: 'must be comma-separated service account user names, e.g. "system:serviceaccount:batch:job-pods-oidc-sources.knative.dev-apiserversource"',
    },
    OPTUNE_EVENT_AUDIENCE: { type: "string", pattern: "^[\\x21-\\x7e]{1,256}$", description: 'must be an OIDC audience of at most 256 visible ASCII characters, e.g. "serving.knative.dev/service/optune-servo/servo-k8s-multijob"' },
    WEBHOOK_SHUTDOWN_DELAY: SECONDS,
    PROMETHEUS_URL: { type: "string", pattern: "^https?://[^\\s]+$", description: "must be the http:// or https:// URL of a Prometheus (or Thanos) query API, e.g. http://prometheus.monitoring.svc:9090" },
    PROMETHEUS_BEARER_TOKEN_FILE: { type: "string", pattern: "\\S", description: "must be the path of a file that holds a bearer token for Prometheus" },
    PROMETHEUS_CA_FILE: { type: "string", pattern: "\\S", description: "must be the path of the CA certificate (PEM) that signed Prometheus' certificate" },
    PROMETHEUS_TIMEOUT: SECONDS,
    PROMETHEUS_SCRAPE_INTERVAL: SECONDS,
    OPTUNE_CPU_RANGE: RANGE,
    OPTUNE_MEM_RANGE: RANGE,
  },
} as const;

