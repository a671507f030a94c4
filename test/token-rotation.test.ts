// The Optune token as the generated manifests deliver it: a file of a mounted Secret
// (OPTUNE_AUTH_TOKEN_FILE), which Kubernetes updates in place by swapping the ..data symlink. A
// running function, and a running webhook, send the new token without a restart.
import assert from "node:assert/strict";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startWebhook, type RunningWebhook } from "../handler/adjust/webhook.js";
import { startReceiver, type Receiver } from "../handler/demo/optune-stand-in.js";
import { loadConfig } from "../handler/edges/config.js";
import { SECRET_POLL_MS } from "../handler/edges/secret-files.js";
import { admissionReview, atCreate, makeCertificate } from "./support/admission.js";
import { jobPod } from "./support/pods.js";
import { scratchDir } from "./support/scratch.js";
import { podEvent, startStack, type Stack } from "./support/stack.js";

/** A Secret volume as the kubelet lays it out: token → ..data/token, ..data → the current version's folder. */
function mountedSecret(token: string): { readonly file: string; rotate(next: string): void } {
  const dir = scratchDir("mounted-secret-");
  let version = 0;
  const write = (value: string) => {
    const folder = `..v${++version}`;
    mkdirSync(join(dir, folder));
    writeFileSync(join(dir, folder, "token"), `${value}\n`);
    symlinkSync(folder, join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
  };
  write(token);
  symlinkSync(join("..data", "token"), join(dir, "token"));
  return { file: join(dir, "token"), rotate: write };
}

/** Sends work until the last Authorization Optune got is `wanted`: the file is polled every SECRET_POLL_MS (10 s), so up to three polls and 5 s more. */
async function untilSent(wanted: string, last: () => string | undefined, work: (attempt: number) => Promise<unknown>): Promise<void> {
  const waitMs = 3 * SECRET_POLL_MS + 5000;
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; last() !== wanted; attempt++) {
    assert.ok(Date.now() < deadline, `still ${last()} ${waitMs / 1000} s after the rotation`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await work(attempt);
  }
}

describe("a running function follows its rotated token file", () => {
  let stack: Stack;
  const secret = mountedSecret("first-token");
  before(async () => {
    stack = await startStack({ POD_NAMESPACES: "batch", OPTUNE_ACCOUNT: "acme.example.com", OPTUNE_AUTH_TOKEN_FILE: secret.file });
  });
  after(() => stack.close());

  const authorizations = () => stack.receiver.requests.map((request) => request.headers.authorization);

  test("before the rotation the file's token is sent; after it, the new one, with no restart", async () => {
    assert.equal((await stack.send(podEvent(jobPod({ uid: "uid-before" })))).status, 200);
    assert.ok(authorizations().length > 0);
    assert.deepEqual([...new Set(authorizations())], ["Bearer first-token"]);

    secret.rotate("second-token");
    await untilSent("Bearer second-token", () => authorizations().at(-1), (attempt) => stack.send(podEvent(jobPod({ uid: `uid-after-${attempt}` }))));
    assert.ok(!stack.logText().includes("second-token"), "the token itself is never logged");
    assert.ok(stack.logs.some((line) => line.msg === "Optune token read again"));
  });
});

describe("a running webhook follows its rotated token file", () => {
  let receiver: Receiver;
  let webhook: RunningWebhook;
  let ca: string;
  const logs: string[] = [];
  const secret = mountedSecret("first-token");
  before(async () => {
    receiver = await startReceiver();
    const dir = scratchDir("webhook-tls-");
    const pair = await makeCertificate();
    ca = pair.cert;
    writeFileSync(join(dir, "tls.crt"), pair.cert);
    writeFileSync(join(dir, "tls.key"), pair.key);
    const config = loadConfig({ WEBHOOK_PORT: "0", WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"), WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key"), OPTUNE_URL: receiver.template, OPTUNE_ACCOUNT: "acme", OPTUNE_AUTH_TOKEN_FILE: secret.file, POD_NAMESPACES: "batch", OPTUNE_DEDUPE: "memory", LOG_LEVEL: "info" });
    webhook = await startWebhook(config, { print: () => {}, logLine: (line) => logs.push(line) });
  });
  after(async () => {
    await webhook.stop("test over");
    await receiver.close();
  });

  /** One AdmissionReview of a new job pod over HTTPS; the webhook asks Optune what next. */
  const admit = (uid: string) =>
    new Promise<number>((resolve, reject) => {
      const request = https.request(new URL("/mutate", webhook.url), { method: "POST", ca, headers: { "content-type": "application/json" } }, (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      });
      request.on("error", reject);
      request.end(JSON.stringify(admissionReview(atCreate(jobPod()), { uid })));
    });
  const authorizations = () => receiver.requests.map((request) => request.headers.authorization);

  test("before the rotation the file's token is sent; after it, the new one, with no restart", async () => {
    assert.equal(await admit("uid-before"), 200);
    assert.deepEqual([...new Set(authorizations())], ["Bearer first-token"]);
    secret.rotate("second-token");
    await untilSent("Bearer second-token", () => authorizations().at(-1), (attempt) => admit(`uid-after-${attempt}`));
    assert.ok(!logs.join("").includes("second-token"), "the token itself is never logged");
  });
});
