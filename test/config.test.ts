import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError, DEFAULT_OPTUNE_URL, loadConfig } from "../handler/edges/config.js";
import { startWarnings } from "../handler/edges/config-warnings.js";
import { scratchDir } from "./support/scratch.js";

const noFile = () => {
  throw new Error("ENOENT: no such file or directory");
};

describe("configuration from the environment", () => {
  test("defaults: the Python daemon's names and values, dry run without account and URL", () => {
    const config = loadConfig({});
    assert.equal(config.optuneUrl, DEFAULT_OPTUNE_URL);
    assert.deepEqual([...config.namespaces], ["default"]);
    assert.equal(config.appIdSpec, "spec/containers/0/env/[JOBID]");
    assert.equal(config.port, 8080);
    assert.equal(config.logLevel, "info");
    assert.equal(config.sendTimeoutMs, 10_000);
    // Knative's adapter waits for each answer before the next event: a delivery gets seconds.
    assert.equal(config.sendDeadlineMs, 5_000);
    // A direct ApiServerSource sink: 5 retries within ~3 s.
    assert.equal(config.sourceRetryWindowMs, 3_000);
    assert.equal(config.authToken, undefined);
    assert.equal(config.dryRun, true);
  });

  test("is frozen", () => {
    assert.ok(Object.isFrozen(loadConfig({})));
  });

  test("an account turns the dry run off; so does a custom URL", () => {
    assert.equal(loadConfig({ OPTUNE_ACCOUNT: "acme.example.com" }).dryRun, false);
    assert.equal(loadConfig({ OPTUNE_URL: "http://127.0.0.1:9/metrics/{app_id}" }).dryRun, false);
    assert.equal(loadConfig({ OPTUNE_ACCOUNT: "acme.example.com" }, { dryRun: true }).dryRun, true);
  });

  test("POD_NAMESPACES is a comma list; spaces around names are allowed", () => {
    assert.deepEqual([...loadConfig({ POD_NAMESPACES: "batch, batch-eu" }).namespaces], ["batch", "batch-eu"]);
  });

  test("the token comes from OPTUNE_AUTH_TOKEN or from the file OPTUNE_AUTH_TOKEN_FILE names", () => {
    assert.equal(loadConfig({ OPTUNE_AUTH_TOKEN: "t0k" }).authToken, "t0k");
    const config = loadConfig({ OPTUNE_AUTH_TOKEN_FILE: "/var/openfaas/secrets/optune-auth-token" }, { readFile: () => "s3cret\n" });
    assert.equal(config.authToken, "s3cret");
  });

  test("seconds may have decimals", () => {
    assert.equal(loadConfig({ OPTUNE_SEND_TIMEOUT: "2.5" }).sendTimeoutMs, 2500);
  });

  for (const [env, message] of [
    [{ POD_NAMESPACES: "" }, 'POD_NAMESPACES must be a comma-separated list of namespace names, e.g. "batch,batch-eu", got ""'],
    [{ POD_NAMESPACES: "batch," }, 'POD_NAMESPACES must be a comma-separated list of namespace names, e.g. "batch,batch-eu", got "batch,"'],
    [{ POD_NAMESPACES: "Batch" }, /^POD_NAMESPACES must be/],
    [{ PORT: "http" }, 'PORT must be a TCP port number, got "http"'],
    [{ PORT: "70000" }, 'PORT must be a TCP port number, got "70000"'],
    [{ LOG_LEVEL: "verbose" }, 'LOG_LEVEL must be one of debug, info, warn, error, got "verbose"'],
    [{ OPTUNE_SEND_TIMEOUT: "10s" }, 'OPTUNE_SEND_TIMEOUT must be a number of seconds, e.g. 10 or 2.5, got "10s"'],
    [{ OPTUNE_SEND_DEADLINE: "0" }, 'OPTUNE_SEND_DEADLINE must be a number of seconds greater than 0, got "0"'],
    [{ OPTUNE_EVENT_SENDERS: "batch/job-pods" }, 'OPTUNE_EVENT_SENDERS must be comma-separated service account user names, e.g. "system:serviceaccount:batch:job-pods-oidc-sources.knative.dev-apiserversource", got "batch/job-pods"'],
    [{ OPTUNE_EVENT_SENDERS: "system:serviceaccount:batch:job-pods-oidc-sources.knative.dev-apiserversource" }, "OPTUNE_EVENT_SENDERS is set, but OPTUNE_EVENT_AUDIENCE is not: senders are told apart by their event tokens"],
    [{ OPTUNE_URL: "ftp://x/{app_id}" }, /^OPTUNE_URL must be an http:\/\/ or https:\/\/ URL/],
    [{ OPTUNE_URL: "https://optune.example/metrics" }, /^OPTUNE_URL must contain \{app_id\}/],
    [{ OPTUNE_URL: "https://optune.example/{acct}/{app_id}" }, "OPTUNE_ACCOUNT must be set: OPTUNE_URL contains {acct}"],
    [{ OPTUNE_ACCOUNT: "" }, 'OPTUNE_ACCOUNT must be a non-empty account name without spaces, got ""'],
    [{ OPTUNE_AUTH_TOKEN: "two words" }, /^OPTUNE_AUTH_TOKEN must be a non-empty token/],
    [{ OPTUNE_APP_ID: "env/[JOBID" }, 'OPTUNE_APP_ID has an unbalanced bracket in "[JOBID", got "env/[JOBID"'],
    [{ OPTUNE_AUTH_TOKEN_FILE: "/nope" }, "OPTUNE_AUTH_TOKEN_FILE names a file that cannot be read: ENOENT: no such file or directory"],
    [{ OPTUNE_AUTH_TOKEN: "a", OPTUNE_AUTH_TOKEN_FILE: "/x" }, /^OPTUNE_AUTH_TOKEN_FILE cannot be set together with OPTUNE_AUTH_TOKEN/],
    // Every duration has an upper bound: a typo must not make the function wait for weeks.
    [{ OPTUNE_SEND_DEADLINE: "3000000" }, 'OPTUNE_SEND_DEADLINE must be at most 3600 seconds, got "3000000"'],
    [{ OPTUNE_SEND_DEADLINE: "3601" }, 'OPTUNE_SEND_DEADLINE must be at most 3600 seconds, got "3601"'],
    [{ OPTUNE_SEND_TIMEOUT: "121" }, 'OPTUNE_SEND_TIMEOUT must be at most 120 seconds, got "121"'],
    [{ OPTUNE_CLAIM_TTL: "86401" }, 'OPTUNE_CLAIM_TTL must be at most 86400 seconds, got "86401"'],
    [{ OPTUNE_SWEEP_MAX_AGE: "2592001" }, 'OPTUNE_SWEEP_MAX_AGE must be at most 2592000 seconds, got "2592001"'],
    [{ KUBE_API_TIMEOUT: "121" }, 'KUBE_API_TIMEOUT must be at most 120 seconds, got "121"'],
    [{ SHUTDOWN_TIMEOUT: "0" }, 'SHUTDOWN_TIMEOUT must be a number of seconds greater than 0, got "0"'],
    [{ SHUTDOWN_TIMEOUT: "3601" }, 'SHUTDOWN_TIMEOUT must be at most 3600 seconds, got "3601"'],
    [{ OPTUNE_MAX_INFLIGHT: "0" }, 'OPTUNE_MAX_INFLIGHT must be between 1 and 10000, got "0"'],
    [{ OPTUNE_MAX_INFLIGHT: "many" }, 'OPTUNE_MAX_INFLIGHT must be a whole number of deliveries, e.g. 64, got "many"'],
    // {app_id} and {acct} are path segments; anywhere else they could change where the token goes.
    [{ OPTUNE_URL: "https://{app_id}.optune.example/m" }, 'OPTUNE_URL may hold {app_id} only in its path, got "https://{app_id}.optune.example/m"'],
    [{ OPTUNE_URL: "https://optune.example/m?app={app_id}" }, /^OPTUNE_URL may hold \{app_id\} only in its path/],
    [{ OPTUNE_URL: "https://optune.example/m/{app_id}#{acct}", OPTUNE_ACCOUNT: "a" }, /^OPTUNE_URL may hold \{acct\} only in its path/],
    [{ OPTUNE_ACCOUNT: ".." }, /^OPTUNE_ACCOUNT cannot be "\.\.": URL parsers remove such a path segment/],
    [{ OPTUNE_ACCOUNT: "." }, /^OPTUNE_ACCOUNT cannot be "\."/],
    // A URL as the account used to be percent-encoded into the path: every delivery to a wrong URL, silently.
    [{ OPTUNE_ACCOUNT: "https://acme.example.com" }, 'OPTUNE_ACCOUNT is the account name, one path segment of OPTUNE_URL (e.g. acme.example.com), not a URL or a path: got "https://acme.example.com"; did you mean acme.example.com?'],
    [{ OPTUNE_ACCOUNT: "https://user:secret@acme.example.com/x" }, /got "https:\/\/\*\*\*@acme.example.com\/x"; did you mean acme.example.com\?$/],
    [{ OPTUNE_ACCOUNT: "acme.example.com/metrics" }, /^OPTUNE_ACCOUNT is the account name.*did you mean acme.example.com\?$/],
    [{ OPTUNE_AUTH_TOKEN: "tok\u0007en" }, "OPTUNE_AUTH_TOKEN must be a non-empty token of at most 4096 visible ASCII characters (no spaces), got a value that is not shown"],
    [{ OPTUNE_AUTH_TOKEN: "tökén" }, /^OPTUNE_AUTH_TOKEN must be a non-empty token .*got a value that is not shown$/],
    // The webhook's settings, checked like the rest.
    [{ WEBHOOK_PORT: "https" }, 'WEBHOOK_PORT must be a TCP port number, got "https"'],
    [{ WEBHOOK_PORT: "70000" }, 'WEBHOOK_PORT must be a TCP port number, got "70000"'],
    [{ OPTUNE_ADJUST_BUDGET: "10" }, 'OPTUNE_ADJUST_BUDGET must be at most 9 seconds, got "10"'],
    [{ OPTUNE_ADJUST_BUDGET: "0" }, 'OPTUNE_ADJUST_BUDGET must be a number of seconds greater than 0, got "0"'],
    [{ OPTUNE_CPU_RANGE: "1,2" }, 'OPTUNE_CPU_RANGE must be min,max,step, e.g. "0.1,3.5,0.001", got "1,2"'],
    [{ OPTUNE_CPU_RANGE: "2,1,0.1" }, 'OPTUNE_CPU_RANGE must be min,max,step in cores with 0 < min < max and 0 < step <= max - min, e.g. "0.1,3.5,0.001", got "2,1,0.1"'],
    [{ OPTUNE_MEM_RANGE: "0,1073741824,4096" }, /^OPTUNE_MEM_RANGE must be min,max,step in bytes with 0 < min < max/],
    [{ OPTUNE_MEM_RANGE: "67108864,1073741824,0" }, /^OPTUNE_MEM_RANGE must be min,max,step in bytes/],
    [{ WEBHOOK_TLS_CERT_FILE: "" }, `WEBHOOK_TLS_CERT_FILE must be the path of the webhook's certificate (PEM), got ""`],
  ] as const) {
    test(`rejects ${JSON.stringify(env)} naming the variable`, () => {
      assert.throws(
        () => loadConfig(env, { readFile: noFile }),
        (error: Error) => error instanceof ConfigError && (typeof message === "string" ? error.message === message : message.test(error.message)),
      );
    });
  }

  test("a user:password@ in OPTUNE_URL is refused without being shown", () => {
    for (const url of ["https://bob:hunter2@optune.example/{app_id}", "https://bob:hunter2@optune.example/ {app_id}"]) {
      assert.throws(
        () => loadConfig({ OPTUNE_URL: url }),
        (error: Error) => error instanceof ConfigError && error.variable === "OPTUNE_URL" && !error.message.includes("hunter2"),
      );
    }
  });

  test("a token file with control or non-ASCII characters, or over 4 KiB, is a configuration error", () => {
    assert.throws(() => loadConfig({ OPTUNE_AUTH_TOKEN_FILE: "/t" }, { readFile: () => "tok\u0000en" }), /OPTUNE_AUTH_TOKEN_FILE names a file that does not hold one token/);
    assert.throws(() => loadConfig({ OPTUNE_AUTH_TOKEN_FILE: "/t" }, { readFile: () => "tökén" }), /OPTUNE_AUTH_TOKEN_FILE names a file that does not hold one token/);
    const big = join(scratchDir("token-"), "token");
    writeFileSync(big, "x".repeat(5000));
    assert.throws(() => loadConfig({ OPTUNE_AUTH_TOKEN_FILE: big }), /^ConfigError: OPTUNE_AUTH_TOKEN_FILE names a file that cannot be read: it is 5000 bytes, more than 4096$/);
  });

  test("the new settings' defaults", () => {
    const config = loadConfig({});
    assert.deepEqual([config.maxInFlight, config.kubeApiTimeoutMs, config.shutdownTimeoutMs], [64, 10_000, 25_000]);
  });

  test("the webhook's defaults: port 8443, cert-manager's file names, a 5 s budget, the daemon's ranges with usable minima", () => {
    const config = loadConfig({});
    assert.deepEqual(config.webhook, { port: 8443, certFile: "/etc/webhook/tls/tls.crt", keyFile: "/etc/webhook/tls/tls.key" });
    assert.equal(config.adjustBudgetMs, 5000);
    assert.deepEqual(config.ranges, { cpu: { min: 0.1, max: 3.5, step: 0.001 }, mem: { min: 67108864, max: 1073741824, step: 4096 } });
    assert.deepEqual(loadConfig({ OPTUNE_CPU_RANGE: " 0.5 , 8 , 0.5 " }).ranges.cpu, { min: 0.5, max: 8, step: 0.5 });
  });

  test("an empty token file is an error", () => {
    assert.throws(() => loadConfig({ OPTUNE_AUTH_TOKEN_FILE: "/t" }, { readFile: () => "\n" }), /OPTUNE_AUTH_TOKEN_FILE names a file that does not hold one token/);
  });

  describe("how one report per job is kept (OPTUNE_DEDUPE)", () => {
    const cluster = (path: string) => path === "/var/run/secrets/kubernetes.io/serviceaccount/token";
    const nothing = () => false;
    const inCluster = { KUBERNETES_SERVICE_HOST: "10.96.0.1", OPTUNE_ACCOUNT: "acme", HOME: "/h" };

    test("claims in annotations when the Kubernetes API is configured", () => {
      const config = loadConfig(inCluster, { exists: cluster });
      assert.equal(config.dedupe, "annotation");
      assert.deepEqual(config.kubeconfig, { kind: "in-cluster", host: "10.96.0.1", port: "443", account: "/var/run/secrets/kubernetes.io/serviceaccount" });
    });

    test("memory when it is not, or when asked", () => {
      assert.equal(loadConfig({ OPTUNE_ACCOUNT: "acme", HOME: "/h" }, { exists: nothing }).dedupe, "memory");
      assert.equal(loadConfig({ ...inCluster, OPTUNE_DEDUPE: "memory" }, { exists: cluster }).dedupe, "memory");
    });

    test("memory in a dry run, which must write nothing anywhere", () => {
      assert.equal(loadConfig({ KUBERNETES_SERVICE_HOST: "10.96.0.1" }, { exists: cluster }).dedupe, "memory");
      assert.throws(() => loadConfig({ ...inCluster, OPTUNE_DEDUPE: "annotation" }, { exists: cluster, dryRun: true }), /^ConfigError: OPTUNE_DEDUPE cannot be annotation in a dry run/);
    });

    test("annotation without any Kubernetes configuration is an error", () => {
      assert.throws(() => loadConfig({ OPTUNE_ACCOUNT: "acme", OPTUNE_DEDUPE: "annotation", HOME: "/h" }, { exists: nothing }), /OPTUNE_DEDUPE is annotation, but no Kubernetes configuration was found/);
    });

    test("the claim TTL must outlive a delivery", () => {
      assert.equal(loadConfig({}).claimTtlMs, 120_000);
      assert.equal(loadConfig({}).sweepMaxAgeMs, 3_600_000);
      assert.throws(() => loadConfig({ ...inCluster, OPTUNE_CLAIM_TTL: "5" }, { exists: cluster }), /^ConfigError: OPTUNE_CLAIM_TTL must be longer than OPTUNE_SEND_DEADLINE \(5 s\)/);
      assert.equal(loadConfig({ OPTUNE_CLAIM_TTL: "30" }).dedupe, "memory", "without claims the TTL guards nothing");
      assert.throws(() => loadConfig({ OPTUNE_DEDUPE: "etcd" }), /OPTUNE_DEDUPE must be annotation or memory, got "etcd"/);
    });
  });

  test("variables the function does not know are left alone", () => {
    assert.doesNotThrow(() => loadConfig({ HOME: "/root", PORT_EXTRA: "x" }));
  });
});

describe("invisible characters in the account and the app id", () => {
  const INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\u061c", "\u00ad", "\u3164", "\ufe0f", "\u2800"];

  for (const character of INVISIBLES) {
    const code = `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
    test(`OPTUNE_ACCOUNT with ${code} is refused, naming the character and where it is`, () => {
      assert.throws(
        () => loadConfig({ OPTUNE_ACCOUNT: `acme.example.com${character}` }),
        (error: Error) => error instanceof ConfigError && error.variable === "OPTUNE_ACCOUNT" && error.message.endsWith(`must not hold invisible characters (zero-width, soft hyphen, direction marks), found ${code} at 16`),
      );
    });
  }

  test("OPTUNE_APP_ID with a zero-width space is refused", () => {
    assert.throws(
      () => loadConfig({ OPTUNE_APP_ID: "spec/containers/0/env/[JOB\u200bID]" }),
      (error: Error) => error instanceof ConfigError && error.variable === "OPTUNE_APP_ID" && /invisible characters.*found U\+200B at 26$/.test(error.message),
    );
  });

  test("visible non-ASCII letters stay allowed in the account", () => {
    assert.equal(loadConfig({ OPTUNE_ACCOUNT: "bücher.example" }).account, "bücher.example");
  });
});

describe("warnings at start", () => {
  const warningsFor = (env: Record<string, string>) => startWarnings(env, loadConfig(env, { kubernetes: false }));

  test("a misspelt OPTUNE_ variable is named, with the one it resembles, never its value", () => {
    assert.deepEqual(warningsFor({ OPTUNE_ACOUNT: "acme.example.com" }), [
      "OPTUNE_ACOUNT is set, but servo-k8s-multijob reads no such variable: did you mean OPTUNE_ACCOUNT?",
    ]);
  });

  test("an unknown KUBE_ variable resembling none is named alone", () => {
    assert.deepEqual(warningsFor({ KUBE_NAMESPACE: "x" }), ["KUBE_NAMESPACE is set, but servo-k8s-multijob reads no such variable"]);
  });

  test("variables of other prefixes, and the ones it reads, bring no warning", () => {
    assert.deepEqual(warningsFor({ HOME: "/root", KUBERNETES_SERVICE_HOST: "10.0.0.1", OPTUNE_ACCOUNT: "a", OPTUNE_AUTH_TOKEN: "t", KUBE_API_TIMEOUT: "5" }), []);
  });

  test("an account without a token: Optune will refuse what is sent", () => {
    assert.deepEqual(warningsFor({ OPTUNE_ACCOUNT: "acme.example.com" }), [
      "OPTUNE_ACCOUNT is set, but no token is (OPTUNE_AUTH_TOKEN or OPTUNE_AUTH_TOKEN_FILE): Optune will refuse the messages sent without one",
    ]);
  });

  test("no account, a dry run, or a URL other than Optune's needs no token", () => {
    assert.deepEqual(warningsFor({}), []);
    assert.deepEqual(warningsFor({ OPTUNE_ACCOUNT: "a", OPTUNE_URL: "http://127.0.0.1:9/{acct}/{app_id}" }), []);
    assert.deepEqual(startWarnings({ OPTUNE_ACCOUNT: "a" }, loadConfig({ OPTUNE_ACCOUNT: "a" }, { dryRun: true })), []);
  });
});
