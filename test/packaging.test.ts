// What deploys the function: the Dockerfile's runtime stage (run here without Docker), the
// OpenFaaS stack file. (What `manifests` prints, and example/, are tested in manifests.test.ts.)
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, readFileSync, symlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";
import { before, describe, test } from "node:test";
import { parse } from "yaml";
import { KNOWN_VARIABLES, loadConfig } from "../handler/edges/config.js";
import { DEFAULT_OPTIONS, FUNCTION, RUN_AS_USER } from "../handler/deploy/manifests.js";
import { selfSignedCertificate, serialNumber } from "../handler/demo/certificate.js";

/** Node 24 is the active LTS; 20 (the development machines') reached end of life on 2026-04-30. */
const IMAGE_NODE_MAJOR = 24;
import { collect, listening, REPOSITORY } from "./support/cli.js";
import { scratchDir } from "./support/scratch.js";

const run = promisify(execFile);

/** The instructions of the last stage of a Dockerfile (the runtime image), joined across line continuations. */
function runtimeStage(dockerfile: string): Array<{ instruction: string; args: string }> {
  const lines = dockerfile.replace(/\\\n/g, " ").split("\n").map((line) => line.trim()).filter((line) => line !== "" && !line.startsWith("#"));
  const stages: Array<Array<{ instruction: string; args: string }>> = [];
  for (const line of lines) {
    const [instruction = "", ...rest] = line.split(/\s+/);
    if (instruction.toUpperCase() === "FROM") stages.push([]);
    stages.at(-1)?.push({ instruction: instruction.toUpperCase(), args: rest.join(" ") });
  }
  return stages.at(-1) ?? [];
}

describe("Dockerfile", () => {
  const dockerfile = readFileSync(join(REPOSITORY, "Dockerfile"), "utf8");
  const stage = runtimeStage(dockerfile);
  const args = (instruction: string) => stage.filter((step) => step.instruction === instruction).map((step) => step.args);

  test("is multi-stage on the Node LTS that CI tests; the runtime runs as a numeric non-root user and exposes 8080 and 8443", () => {
    const froms = [...dockerfile.matchAll(/^FROM node:(\d+)-/gm)].map((match) => Number(match[1]));
    assert.ok(froms.length >= 2);
    assert.deepEqual(new Set(froms), new Set([IMAGE_NODE_MAJOR]));
    assert.match(readFileSync(join(REPOSITORY, ".ci/run"), "utf8"), new RegExp(`node@${IMAGE_NODE_MAJOR}\\b`), ".ci/run tests on the image's Node major");
    const [user, group] = args("USER")[0]!.split(":");
    assert.ok(Number(user) > 0 && Number(group) > 0, "numeric and not root, so runAsNonRoot can check it");
    assert.equal(Number(user), RUN_AS_USER, "the manifests' runAsUser is the image's user");
    assert.deepEqual(args("EXPOSE"), ["8080 8443"]);
    assert.match(args("RUN").join(" "), /npm ci --omit=dev/);
  });

  describe("the runtime stage's file layout (production dependencies plus what it copies), run without Docker", () => {
    let image = "";
    let command: string[] = [];
    /** Only the folder of node: nothing this machine has installed (Prometheus, openssl) is in the image. */
    const imageEnv = { PATH: dirname(process.execPath) };
    before(async () => {
      image = scratchDir("servo-image-");
      // COPY package.json package-lock.json ./ and RUN npm ci --omit=dev …, as the stage says.
      for (const copy of args("COPY").filter((copy) => !copy.startsWith("--from"))) copyInto(image, REPOSITORY, copy);
      const install = args("RUN").flatMap((command) => command.split("&&")).map((part) => part.trim()).find((part) => part.startsWith("npm ci"));
      assert.ok(install, "the runtime stage installs with npm ci");
      await run("sh", ["-c", `${install} --prefer-offline`], { cwd: image });
      // COPY --from=build /app/dist/handler/servo.cjs ./dist/handler/servo.cjs: the build here made it.
      for (const copy of args("COPY").filter((copy) => copy.startsWith("--from=build "))) copyInto(image, REPOSITORY, copy.slice("--from=build ".length).replaceAll("/app/", ""));
      // The image's WORKDIR /app is this folder.
      command = [...(JSON.parse(args("ENTRYPOINT")[0]!) as string[]), ...(JSON.parse(args("CMD")[0]!) as string[])].map((part) => part.replace(/^\/app\//, `${image}/`));
    }, { timeout: 180_000 });

    test("has no dev dependency", () => {
      assert.ok(!existsSync(join(image, "node_modules", "typescript")), "no dev dependencies in the image");
      assert.ok(!existsSync(join(image, "node_modules", "cloudevents")), "no dev dependencies in the image");
      assert.ok(!existsSync(join(image, "node_modules", "selfsigned")), "no dev dependencies in the image");
    });

    test("serve starts and answers /healthz; manifests and dead-letters --help run", async () => {
      assert.deepEqual(command, ["node", "--max-semi-space-size=4", join(image, "dist/handler/servo.cjs"), "serve"]);
      const child = spawn(process.execPath, command.slice(1), { cwd: image, env: { ...imageEnv, PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
      const done = collect(child);
      const port = await listening(child);
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(response.status, 200);
      child.kill("SIGTERM");
      assert.equal((await done).code, 0);
      // docker run --rm IMAGE manifests ...: the entrypoint takes the CLI's commands in place of CMD.
      const manifests = await run(process.execPath, [...command.slice(1, -1), "manifests", "--watch", "batch", "--image", "registry.example.com/servo-k8s-multijob:1.0.0"], { cwd: image, env: imageEnv });
      assert.match(manifests.stdout, /^# Generated by: servo-k8s-multijob manifests --watch batch --image registry\.example\.com\/servo-k8s-multijob:1\.0\.0\n/);
      const dead = await run(process.execPath, [...command.slice(1, -1), "dead-letters", "--help"], { cwd: image, env: imageEnv });
      assert.match(dead.stdout, /^usage: servo-k8s-multijob dead-letters/);
    });

    test("demo runs the whole loop on the examples the image ships, from another folder (docker run -w /work)", { timeout: 120_000 }, async () => {
      const demo = await run(process.execPath, [...command.slice(1, -1), "demo"], { cwd: scratchDir("servo-work-"), env: imageEnv, timeout: 60_000 });
      assert.match(demo.stdout, /1\. A new pod of Job resize-images admitted through the webhook/);
      assert.match(demo.stdout, /2\. Replayed 6 events in binary mode/);
      assert.match(demo.stdout, /The function exited with code 0, the webhook with 0\./);
    });

    test("demo FILE runs on a file of the working folder", { timeout: 120_000 }, async () => {
      const work = scratchDir("servo-work-");
      cpSync(join(REPOSITORY, "example/events/01-succeeded-job.json"), join(work, "pod.json"));
      const demo = await run(process.execPath, [...command.slice(1, -1), "demo", "pod.json"], { cwd: work, env: imageEnv, timeout: 60_000 });
      assert.match(demo.stdout, /2\. Replayed 1 events in binary mode/);
      assert.match(demo.stdout, /default\/nightly-thumbnails-x7k2p\s+nightly-thumbnails\s+95 s/);
    });

    test("a demo that cannot go on says why in one line and ends, its servers with it", { timeout: 120_000 }, async () => {
      // The layout without the sample admission review: the webhook's part cannot start.
      const broken = scratchDir("servo-image-broken-");
      cpSync(image, broken, { recursive: true, filter: (path) => !path.includes("example/admission") && !path.includes("node_modules") });
      symlinkSync(join(image, "node_modules"), join(broken, "node_modules"));
      const demo = await run(process.execPath, [join(broken, "dist/handler/servo.cjs"), "demo"], { cwd: broken, env: imageEnv, timeout: 60_000 }).catch((error: { code: unknown; killed: boolean; stderr: string }) => error);
      assert.equal("killed" in demo && demo.killed, false, "it ended by itself");
      assert.equal("code" in demo ? demo.code : 0, 1);
      assert.match(demo.stderr, /^servo-k8s-multijob demo: ENOENT: no such file or directory, open '.*review\.json'\n$/);
    });
  });
});

/** A Dockerfile `COPY SOURCE... DEST` (WORKDIR the image folder) done from `context` into `image`. */
function copyInto(image: string, context: string, copy: string): void {
  const parts = copy.split(/\s+/);
  const target = join(image, parts.pop()!);
  for (const source of parts) cpSync(join(context, source), parts.length > 1 || copy.endsWith("/") ? join(target, basename(source)) : target, { recursive: true });
}

describe("package.json: ready to publish under a name we control", () => {
  const manifest = JSON.parse(readFileSync(join(REPOSITORY, "package.json"), "utf8")) as Record<string, any>;

  test("a scoped name (only its scope's owners can publish it), the command as its bin, only the bundle and the docs packed", async () => {
    assert.equal(manifest.name, "@opsani/servo-k8s-multijob");
    assert.equal(manifest.private, undefined);
    assert.deepEqual(manifest.publishConfig, { access: "public" });
    assert.deepEqual(manifest.bin, { "servo-k8s-multijob": "dist/handler/servo.cjs" });
    const { stdout } = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: REPOSITORY });
    const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
    assert.deepEqual(pack!.files.map((file) => file.path).sort(), ["LICENSE", "README.md", "dist/handler/servo.cjs", "package.json"]);
  });

  test("no README or example line runs npx on the bare name, which would fetch whoever publishes it", () => {
    for (const file of ["README.md", "example/openfaas/README.md", "docs/development.md", "docs/how-it-works.md"]) {
      const text = existsSync(join(REPOSITORY, file)) ? readFileSync(join(REPOSITORY, file), "utf8") : "";
      assert.doesNotMatch(text, /npx (?!--no\b)(-\S+ )*servo-k8s-multijob/, file);
    }
  });
});

for (const [file, edition] of [["functions.yml", "CE"], ["functions-standard.yml", "Standard"]] as const) describe(`${file} (OpenFaaS ${edition})`, () => {
  const text = readFileSync(join(REPOSITORY, file), "utf8");
  const stack = parse(text) as {
    version: unknown;
    provider: Record<string, unknown>;
    functions: Record<string, Record<string, unknown>>;
  };
  const [name, fn] = Object.entries(stack.functions)[0]!;
  // faas-cli ignores keys it does not know, so a typo would deploy silently without its setting.
  const FUNCTION_KEYS = ["lang", "handler", "image", "environment", "environment_file", "secrets", "labels", "annotations", "limits", "requests", "constraints", "readonly_root_filesystem", "build_args", "namespace"];

  test("is a 1.0 stack file for the openfaas provider with one function", () => {
    assert.match(text, /^version: 1\.0$/m); // YAML reads 1.0 as a number; faas-cli reads the text
    assert.equal(stack.version, 1);
    assert.equal(stack.provider.name, "openfaas");
    assert.match(String(stack.provider.gateway), /^https?:\/\//);
    assert.equal(name, "servo-k8s-multijob");
  });

  test("builds the root Dockerfile (lang dockerfile, handler .) and uses only keys faas-cli knows", () => {
    assert.equal(fn.lang, "dockerfile");
    assert.equal(fn.handler, ".");
    assert.ok(existsSync(join(REPOSITORY, String(fn.handler), "Dockerfile")));
    assert.match(String(fn.image), /servo-k8s-multijob:/);
    for (const key of Object.keys(fn)) assert.ok(FUNCTION_KEYS.includes(key), `unknown function key ${key}`);
  });

  test("its environment is a valid configuration that reads the token from the mounted secret", () => {
    const environment = fn.environment as Record<string, string>;
    for (const variable of Object.keys(environment)) assert.ok(KNOWN_VARIABLES.includes(variable), `the function does not read ${variable}`);
    const secrets = fn.secrets as string[];
    assert.equal(environment.OPTUNE_AUTH_TOKEN_FILE, `/var/openfaas/secrets/${secrets[0]}`);
    const read: string[] = [];
    const config = loadConfig(environment, { readFile: (path) => (read.push(path), "token-from-secret\n") });
    assert.deepEqual(read, [environment.OPTUNE_AUTH_TOKEN_FILE]);
    assert.equal(config.authToken, "token-from-secret");
    // Deployed as it is, it sends nothing: a placeholder account would send made-up MEASUREMENTs to a real one.
    assert.equal(environment.OPTUNE_ACCOUNT, undefined);
    assert.equal(config.dryRun, true, "dry until the account is given");
    // faas-cli deploy --env OPTUNE_ACCOUNT=... (its flags win over the stack file's environment).
    assert.equal(loadConfig({ ...environment, OPTUNE_ACCOUNT: "acme.example.com" }, { readFile: () => "token-from-secret\n" }).dryRun, false);
    assert.match(text, /--env OPTUNE_ACCOUNT=/, "the file says how to make it send");
    assert.deepEqual([...config.namespaces], [...DEFAULT_OPTIONS.watch], "the same namespaces as manifests --target openfaas");
  });

  if (edition === "CE") {
    test("keeps its claims in memory: OpenFaaS CE gives functions no ServiceAccount to claim with", () => {
      assert.equal(loadConfig(fn.environment as Record<string, string>, { readFile: () => "t" }).dedupe, "memory");
    });
  } else {
    test("runs as the ServiceAccount manifests --openfaas-edition standard creates, and so keeps its claims in the pods", () => {
      assert.equal((fn.annotations as Record<string, string>)["com.openfaas.serviceaccount"], FUNCTION);
      // Deployed with its account (dry, it keeps nothing in the pods): faas-cli deploy --env OPTUNE_ACCOUNT=...
      const inCluster = { ...(fn.environment as Record<string, string>), OPTUNE_ACCOUNT: "acme.example.com", KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" };
      assert.equal(loadConfig(inCluster, { readFile: () => "t", exists: () => true }).dedupe, "annotation");
    });
  }
});

describe("LICENSE", () => {
  test("holds the Apache License 2.0 that package.json names", () => {
    const license = readFileSync(join(REPOSITORY, "LICENSE"), "utf8");
    assert.equal(JSON.parse(readFileSync(join(REPOSITORY, "package.json"), "utf8")).license, "Apache-2.0");
    assert.match(license, /^\s+Apache License\n\s+Version 2\.0, January 2004\n/);
    assert.match(license, /END OF TERMS AND CONDITIONS/);
  });
});

describe("the demo's certificate", () => {
  test("its serial is a minimal positive DER INTEGER whatever the random bytes (a leading zero byte made one in 256 unreadable)", () => {
    for (const first of [0x00, 0x01, 0x7f, 0x80, 0xff]) {
      const serial = serialNumber(Buffer.from([first, 0x05, 0x06]));
      assert.ok(serial[0]! >= 0x40 && serial[0]! <= 0x7f, `first byte ${first} gave ${serial[0]}`);
    }
    assert.doesNotThrow(() => new X509Certificate(selfSignedCertificate().cert));
  });
});
