// The files `invoke` and `admit` read are bounded by bytes, as the function's HTTP bodies are.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { MAX_INPUT_BYTES, readBounded } from "../handler/edges/input-files.js";
import { MAX_BODY_BYTES } from "../handler/edges/http-edge.js";
import { collect, runCli, startCli } from "./support/cli.js";

const TOO_LARGE = `larger than ${MAX_BODY_BYTES} bytes (the most the function takes in one request); not read further`;

describe("input files are bounded by bytes", () => {
  test("the limit is the function's body limit", () => {
    assert.equal(MAX_INPUT_BYTES, MAX_BODY_BYTES);
  });

  test("a stream of exactly the limit is read whole", async () => {
    assert.equal(await readBounded(Readable.from([Buffer.from("ab"), Buffer.from("cd")]), 4), "abcd");
  });

  test("a stream one byte over the limit is refused", async () => {
    await assert.rejects(readBounded(Readable.from([Buffer.from("ab"), Buffer.from("cde")]), 4), { message: /^larger than 4 bytes/ });
  });

  test("past the limit the stream is destroyed: nothing more is read from it", async () => {
    let pulled = 0;
    const endless = new Readable({ read() { pulled += 1; this.push(Buffer.alloc(1024)); } });
    await assert.rejects(readBounded(endless, 10 * 1024));
    const atRefusal = pulled;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(endless.destroyed, true);
    assert.ok(pulled <= atRefusal + 1, `pulled ${pulled - atRefusal} more chunks`);
  });

  for (const command of ["admit", "invoke"]) {
    test(`${command} /dev/zero: refused with exit 2 after the limit, no stack`, async () => {
      const run = await runCli([command, "--dry-run", "/dev/zero"]);
      assert.equal(run.code, 2);
      assert.equal(run.stderr, `/dev/zero: ${TOO_LARGE}\n`);
    });
  }

  test("admit - with endless standard input: refused with exit 2, and it stops reading", async () => {
    const child = startCli(["admit", "--dry-run", "-"]);
    const done = collect(child);
    let written = 0;
    const chunk = Buffer.alloc(64 * 1024, "a");
    child.stdin?.on("error", () => {}); // EPIPE once the command stops reading
    let closed = false;
    void done.then(() => (closed = true));
    const feed = async () => {
      while (!closed && child.stdin?.writable === true) {
        written += chunk.length;
        if (!child.stdin.write(chunk)) await Promise.race([new Promise((resolve) => child.stdin?.once("drain", resolve)), done]);
      }
    };
    void feed();
    const run = await done;
    assert.equal(run.code, 2);
    assert.equal(run.stderr, `(stdin): ${TOO_LARGE}\n`);
    assert.ok(written < 8 * MAX_BODY_BYTES, `${written} bytes were taken from standard input`);
  });
});
