// The files in example/ that `servo-k8s-multijob manifests` prints, and the flags that print each.
// `npm run examples` writes them; test/manifests.test.ts asserts they are what the generator prints.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { MANIFEST_FLAGS } from "../../handler/deploy/flags.js";
import { optionsFrom, renderManifests } from "../../handler/deploy/print.js";
import type { ManifestOptions } from "../../handler/deploy/manifests.js";
import { REPOSITORY } from "./cli.js";

export const EXAMPLES: ReadonlyArray<{ readonly file: string; readonly args: readonly string[] }> = [
  { file: "example/knative/manifests.yaml", args: [] },
  { file: "example/knative/batch-etl.yaml", args: ["--watch", "batch,etl", "--account", "acme.example.com", "--selector", "batch.kubernetes.io/job-name", "--pod-monitor"] },
  { file: "example/knative/broker.yaml", args: ["--account", "acme.example.com", "--broker"] },
  { file: "example/knative/event-auth.yaml", args: ["--account", "acme.example.com", "--event-auth"] },
  { file: "example/openfaas/manifests.yaml", args: ["--target", "openfaas"] },
  { file: "example/webhook/manifests.yaml", args: ["--account", "acme.example.com", "--webhook", "--pod-monitor"] },
];

export function exampleOptions(args: readonly string[]): ManifestOptions {
  const options = optionsFrom(parseArgs({ args: [...args], options: MANIFEST_FLAGS, strict: true }).values);
  if (typeof options === "string") throw new Error(options);
  return options;
}

export function renderExample(args: readonly string[]): Promise<string> {
  return renderManifests(exampleOptions(args));
}

export async function writeExamples(): Promise<void> {
  for (const { file, args } of EXAMPLES) writeFileSync(join(REPOSITORY, file), await renderExample(args));
}
