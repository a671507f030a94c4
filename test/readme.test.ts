// The README's shell blocks, run as far as they can run here (no cluster, no Docker, no OpenFaaS):
// every `servo-k8s-multijob` command (and `docker run IMAGE COMMAND`, whose entrypoint is the same
// command) is run with the built CLI, a pipe's left side alone. Commands that need a cluster must
// at least get past their flags. The rest must be tools a reader has (kubectl, docker, faas-cli).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { collect, REPOSITORY, runCli, startCli } from "./support/cli.js";

interface Line {
  readonly file: string;
  readonly text: string;
}

/** The command lines of the ```sh blocks: continuations joined, comment lines dropped. */
function shellLines(file: string): Line[] {
  const markdown = readFileSync(join(REPOSITORY, file), "utf8");
  const lines: Line[] = [];
  for (const block of markdown.matchAll(/^ *```sh\n([\s\S]*?)^ *```$/gm)) {
    const joined = block[1]!.replace(/\\\n\s*/g, "");
    for (const raw of joined.split("\n")) {
      const text = raw.trim();
      if (text !== "" && !text.startsWith("#")) lines.push({ file, text });
    }
  }
  return lines;
}

/** Splits a simple command line into words: single and double quotes, no expansions. */
function words(text: string): string[] {
  return [...text.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? match[2] ?? match[3]!);
}

/** Our command in a pipe's first stage: its environment prefix and arguments; undefined when the stage is someone else's. */
function ours(stage: string): { env: Record<string, string>; args: string[] } | undefined {
  const parts = words(stage);
  const env: Record<string, string> = {};
  while (parts[0] !== undefined && /^[A-Z_]+=/.test(parts[0])) {
    const [name, ...value] = parts.shift()!.split("=");
    env[name!] = value.join("=");
  }
  if (parts[0] === "servo-k8s-multijob") return { env, args: parts.slice(1) };
  // docker run --rm [-i] IMAGE COMMAND...: the image's entrypoint is the command.
  if (parts[0] === "docker" && parts[1] === "run") {
    const rest = parts.slice(2).filter((part) => !["--rm", "-i"].includes(part));
    if (rest[0] !== undefined && !rest[0].startsWith("-")) return { env, args: rest.slice(1) };
  }
  return undefined;
}

const FILES = ["README.md", "example/openfaas/README.md"];
const OTHER_TOOLS = new Set(["npm", "npx", "kubectl", "docker", "faas-cli", "alias", "export", "REGISTRY=docker.io/your-user"]);
/** Ours, but they need a cluster, a running function or Optune: only their flags are checked here. */
const NEEDS_MORE = new Set(["check", "sweep", "release", "uninstall"]);

describe("the README's commands", () => {
  const lines = FILES.flatMap(shellLines);
  let ran = 0;

  test("the two quick-start commands are there, exactly as .ci/run and a newcomer run them", () => {
    const readme = lines.filter((line) => line.file === "README.md").map((line) => line.text);
    assert.ok(readme.includes("npm ci && npm run demo"));
    assert.ok(readme.includes("npm ci && npm test"));
    assert.match(readFileSync(join(REPOSITORY, ".ci/run"), "utf8"), /^npm ci && TMPDIR="\$scratch" npm test$/m);
  });

  for (const line of lines) {
    const [first = "", ...rest] = line.text.split(/\s*\|\s*/);
    const command = ours(first);
    if (command === undefined) {
      test(`${line.file}: ${line.text.slice(0, 90)} — a tool the reader has`, () => {
        const tool = words(first)[0]!;
        assert.ok(OTHER_TOOLS.has(tool) || /^[A-Z_]+=/.test(tool), `unknown command ${tool}`);
      });
      continue;
    }
    test(`${line.file}: ${line.text.slice(0, 90)}`, async () => {
      const [sub] = command.args;
      if (sub !== undefined && NEEDS_MORE.has(sub)) {
        // No kubeconfig here: the flags parse, and it says so instead of doing anything.
        const run = await runCli(command.args, command.env);
        assert.equal(run.code, 2, run.stderr);
        assert.doesNotMatch(run.stderr, /Unknown option|Unexpected argument|unknown command/i, run.stderr);
        assert.match(run.stderr, /kubeconfig|Kubernetes/);
        return;
      }
      const run = await runCli(command.args, command.env);
      assert.equal(run.code, 0, `${line.text}\n${run.stderr}`);
      ran++;
      if (sub === "manifests") {
        const documents = parseAllDocuments(run.stdout);
        assert.ok(Array.isArray(documents) && documents.length > 3);
        for (const document of documents) assert.deepEqual(document.errors, []);
        assert.ok(rest.every((stage) => /^(kubectl (apply|delete) -f -|tee servo\.yaml)$/.test(stage)), rest.join(" | "));
      }
    });
  }

  // Lines whose first stage is kubectl and whose later stage is ours: run ours on a sample of what kubectl prints.
  for (const line of lines.filter((candidate) => candidate.text.startsWith("kubectl get pods") && candidate.text.includes("| "))) {
    test(`${line.file}: ${line.text} — on a List like the one kubectl prints`, async () => {
      const stage = line.text.split(/\s*\|\s*/)[1]!;
      const command = ours(stage);
      assert.ok(command, stage);
      const pod = JSON.parse(readFileSync(join(REPOSITORY, "example/events/01-succeeded-job.json"), "utf8")).data;
      const list = { apiVersion: "v1", kind: "List", items: [{ ...pod, metadata: { ...pod.metadata, namespace: "batch" } }] };
      const child = startCli(command.args, command.env);
      const done = collect(child);
      child.stdin?.end(JSON.stringify(list));
      const { code, stdout, stderr } = await done;
      assert.equal(code, 0, stderr);
      assert.match(stdout, /"event":"MEASUREMENT"/, "the README's line measures the pods of the namespace it names");
      ran++;
    });
  }

  test("the clone alias gives --version to servo-k8s-multijob, not to npx", async () => {
    const readme = readFileSync(join(REPOSITORY, "README.md"), "utf8");
    const alias = /`(alias servo-k8s-multijob='npx [^'`]*')`/.exec(readme)?.[1];
    assert.ok(alias, "the README shows the clone alias");
    // An alias takes effect from the next line read: two lines, as a reader types them. In a shell
    // of the reader's, not one npm made for a script: `npm test` run by `npx -c` (as CI runs the
    // supported Node) leaves npm_config_call set, and npx then refuses the alias's arguments.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile("bash", ["-O", "expand_aliases", "-c", `${alias}\nservo-k8s-multijob --version`], { cwd: REPOSITORY, env }, (error, out) => (error ? reject(error) : resolve(out))),
    );
    assert.match(stdout, /^servo-k8s-multijob \d+\.\d+\.\d+\n$/);
  });

  test("at least the README's own commands ran", () => {
    assert.ok(ran >= 6, `only ${ran} commands ran`);
  });
});
