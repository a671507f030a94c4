// Replays every vector in ../shared/contract (see its README) through the real server against a
// local receiver, in binary and in structured content mode.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { acceptingReviewer, startStack, type Mode } from "./support/stack.js";
import { serviceAccountToken } from "./support/tokens.js";

const REPOSITORY = fileURLToPath(new URL("../../", import.meta.url));
const CONTRACT_DIR = process.env.CONTRACT_DIR ?? resolve(REPOSITORY, "../shared/contract");

interface Vector {
  description: string;
  env: Record<string, string>;
  events?: Array<Record<string, unknown>>;
  raw?: string;
  expect: { status: "2xx" | "4xx" | "not5xx"; posts: Array<{ path: string; body: unknown }>; authorization?: null };
}

const STATUS: Record<Vector["expect"]["status"], (status: number) => boolean> = {
  "2xx": (status) => status >= 200 && status < 300,
  "4xx": (status) => status >= 400 && status < 500,
  not5xx: (status) => status < 500,
};

/** Every expected key is equal; param.annotations may hold extra keys; perf matches to a relative 1e-12. */
export function assertBodyMatches(actual: unknown, expected: unknown, path = "body"): void {
  if (typeof expected === "number" && path.endsWith(".perf.value")) {
    assert.equal(typeof actual, "number", path);
    assert.ok(Math.abs((actual as number) - expected) <= Math.abs(expected) * 1e-12, `${path}: ${String(actual)} != ${expected}`);
    return;
  }
  if (typeof expected !== "object" || expected === null || Array.isArray(expected)) {
    assert.deepEqual(actual, expected, path);
    return;
  }
  assert.ok(typeof actual === "object" && actual !== null && !Array.isArray(actual), `${path}: expected an object`);
  const actualKeys = Object.keys(actual).sort();
  const expectedKeys = Object.keys(expected).sort();
  if (path === "body.param.annotations") {
    for (const key of expectedKeys) assert.ok(actualKeys.includes(key), `${path}: missing ${key}`);
  } else {
    assert.deepEqual(actualKeys, expectedKeys, `${path}: keys`);
  }
  for (const key of expectedKeys) {
    assertBodyMatches((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key], `${path}.${key}`);
  }
}

const files = existsSync(CONTRACT_DIR) ? readdirSync(CONTRACT_DIR).filter((name) => name.endsWith(".json")).sort() : [];

describe(`contract vectors (${CONTRACT_DIR})`, () => {
  if (files.length === 0) {
    test("contract vectors", (t) => t.skip(`no vectors found in ${CONTRACT_DIR}; set CONTRACT_DIR`));
    return;
  }

  for (const file of files) {
    const vector = JSON.parse(readFileSync(join(CONTRACT_DIR, file), "utf8")) as Vector;
    for (const mode of ["binary", "structured"] as Mode[]) {
      test(`${file} in ${mode} mode: ${vector.description}`, async () => {
        // A delete with nothing before it that showed the pod finished is believed only from an
        // authenticated sender (the hardening of round three): such a vector is replayed with
        // event authentication on, as the deployment that trusts deletes runs.
        const onlyDelete = vector.events?.[0]?.type === "dev.knative.apiserver.resource.delete";
        const token = serviceAccountToken({ sub: "system:serviceaccount:batch:oidc-apiserversource-job-pods", aud: ["test-audience"] });
        const eventAuth = onlyDelete ? { eventAuth: { token, audience: "test-audience", reviewer: acceptingReviewer(token, "test-audience") } } : {};
        const stack = await startStack({ LOG_LEVEL: "error", ...vector.env }, eventAuth);
        try {
          const responses =
            vector.raw !== undefined
              ? [await stack.post(vector.raw, { "content-type": "application/cloudevents+json" })]
              : await vector.events!.reduce(
                  async (previous, event) => [...(await previous), await stack.send(event, mode)],
                  Promise.resolve([] as Response[]),
                );
          for (const [index, response] of responses.entries()) {
            assert.ok(STATUS[vector.expect.status](response.status), `event ${index}: HTTP ${response.status} is not ${vector.expect.status}: ${await response.text()}`);
          }

          const posts = stack.measurements();
          assert.equal(posts.length, vector.expect.posts.length, `posts: ${JSON.stringify(posts.map((post) => post.path))}`);
          for (const [index, expected] of vector.expect.posts.entries()) {
            assert.equal(posts[index]?.method, "POST");
            assert.equal(posts[index]?.path, expected.path);
            assertBodyMatches(posts[index]?.body, expected.body);
          }
          for (const post of posts) {
            const expected = vector.expect.authorization === null ? undefined : `Bearer ${vector.env.OPTUNE_AUTH_TOKEN}`;
            assert.equal(post.headers.authorization, expected);
          }
        } finally {
          await stack.close();
        }
      });
    }
  }
});
