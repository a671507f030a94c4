// The Optune token as the generated manifests deliver it: a file of a mounted Secret
// (OPTUNE_AUTH_TOKEN_FILE), which Kubernetes updates in place by swapping the ..data symlink. A
// running function sends the new token without a restart.
import assert from "node:assert/strict";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SECRET_POLL_MS } from "../handler/edges/secret-files.js";
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
    // The file is polled every SECRET_POLL_MS (10 s): wait for up to three polls, sending a new job each time.
    const deadline = Date.now() + 3 * SECRET_POLL_MS + 5000;
    let uid = 0;
    while (authorizations().at(-1) !== "Bearer second-token") {
      assert.ok(Date.now() < deadline, `still ${authorizations().at(-1)} ${Math.round((3 * SECRET_POLL_MS + 5000) / 1000)} s after the rotation`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await stack.send(podEvent(jobPod({ uid: `uid-after-${uid++}` })));
    }
    assert.ok(!stack.logText().includes("second-token"), "the token itself is never logged");
    assert.ok(stack.logs.some((line) => line.msg === "Optune token read again"));
  });
});
