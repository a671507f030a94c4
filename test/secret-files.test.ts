// Secrets mounted from Kubernetes or OpenFaaS are replaced in place: the function reads them again.
import assert from "node:assert/strict";
import { renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { createLogger } from "../handler/edges/log.js";
import { tokenSource } from "../handler/edges/secret-files.js";
import { scratchDir } from "./support/scratch.js";

const until = async (check: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

/** Lets the watcher take its first look, so the change comes after it. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

describe("the Optune token file", () => {
  test("a token from the environment is fixed", () => {
    const source = tokenSource("t0k", undefined, createLogger("error", () => {}));
    assert.equal(source.current(), "t0k");
    source.stop();
  });

  test("rotated as Kubernetes does it (the ..data symlink swapped): the new token is used", async () => {
    const dir = scratchDir("secret-");
    const version = (name: string, token: string) => writeFileSync(join(dir, `${name}.token`), token);
    version("v1", "first-token\n");
    symlinkSync(join(dir, "v1.token"), join(dir, "..data"));
    const file = join(dir, "token");
    symlinkSync(join(dir, "..data"), file);
    const lines: string[] = [];
    const source = tokenSource("first-token", file, createLogger("info", (line) => lines.push(line)), 20);
    try {
      assert.equal(source.current(), "first-token");
      await settle();
      version("v2", "second-token\n");
      symlinkSync(join(dir, "v2.token"), join(dir, "..data.tmp"));
      renameSync(join(dir, "..data.tmp"), join(dir, "..data"));
      await until(() => source.current() === "second-token");
      assert.ok(lines.some((line) => line.includes("Optune token read again")));
      assert.ok(!lines.join("").includes("second-token"), "the token itself is never logged");
    } finally {
      source.stop();
    }
  });

  test("a new content that is not a token is logged and the last good token kept", async () => {
    const file = join(scratchDir("secret-"), "token");
    writeFileSync(file, "good-token");
    const lines: string[] = [];
    const source = tokenSource("good-token", file, createLogger("info", (line) => lines.push(line)), 20);
    try {
      await settle();
      writeFileSync(file, "two words, and more of them");
      await until(() => lines.some((line) => line.includes("does not hold one token")));
      assert.equal(source.current(), "good-token");
    } finally {
      source.stop();
    }
  });
});
