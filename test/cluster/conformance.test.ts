// A second, independent sender: the CloudEvents conformance tool
// (github.com/cloudevents/conformance/cmd/cloudevents, built by install.sh) sends each example event
// in binary and in structured mode. The function must do with them exactly what it does with the
// same events encoded by the CloudEvents SDK: the same MEASUREMENTs to Optune, the same answers.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { REPOSITORY } from "../support/cli.js";
import { startStack } from "../support/stack.js";
import { CONFORMANCE, skipUnlessInstalled, VERSIONS } from "./components.js";

const run = promisify(execFile);
const skip = skipUnlessInstalled("newest", [CONFORMANCE]);
const EVENTS = join(REPOSITORY, "example", "events");

/** The tool's flags for a structured-mode JSON event: attributes, extensions, data. */
function sendArgs(event: Record<string, unknown>, mode: "binary" | "structured"): string[] {
  const known = new Set(["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"]);
  const args = ["--mode", mode, "--id", String(event.id), "--source", String(event.source), "--type", String(event.type), "--datacontenttype", String(event.datacontenttype ?? "application/json"), "--data", JSON.stringify(event.data)];
  if (event.subject !== undefined) args.push("--subject", String(event.subject));
  if (event.time !== undefined) args.push("--time", String(event.time));
  for (const [key, value] of Object.entries(event)) if (!known.has(key)) args.push("--extension", `${key}=${String(value)}`);
  return args;
}

describe(`the CloudEvents conformance tool ${VERSIONS.CLOUDEVENTS_CONFORMANCE} as the sender`, { skip }, () => {
  const files = readdirSync(EVENTS).filter((name) => name.endsWith(".json")).sort();
  const env = { POD_NAMESPACES: "default", OPTUNE_ACCOUNT: "acme", LOG_LEVEL: "warn" };

  for (const mode of ["binary", "structured"] as const) {
    test(`${mode} mode: every example event handled as when the SDK sends it`, async () => {
      const bySdk = await startStack(env);
      const byTool = await startStack(env);
      try {
        for (const file of files) {
          const event = JSON.parse(readFileSync(join(EVENTS, file), "utf8")) as Record<string, unknown>;
          await bySdk.send(event, mode);
          // It exits non-zero when the function does not answer 2xx (execFile then throws).
          await run(CONFORMANCE, ["send", byTool.fn.url, ...sendArgs(event, mode)]);
        }
        const bodies = (stack: typeof bySdk) => stack.measurements().map((request) => [request.path, request.body]);
        assert.ok(bySdk.measurements().length >= 3, "the examples include finished jobs");
        assert.deepEqual(bodies(byTool), bodies(bySdk));
      } finally {
        await bySdk.close();
        await byTool.close();
      }
    });
  }
});
