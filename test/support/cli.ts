// Runs the built command line as a user would, with only the environment given.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { scratchDir } from "./scratch.js";

export const REPOSITORY = fileURLToPath(new URL("../../../", import.meta.url));
/** The command as it ships: the bundle that `npm run build` makes of handler/cli.ts and what it imports. */
export const CLI = fileURLToPath(new URL("../../handler/servo.cjs", import.meta.url));

export interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return collect(startCli(args, env));
}

/** An empty home: a developer's ~/.kube/config must not turn claims on in these tests. */
const HOME = scratchDir("servo-home-");

export function startCli(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd: REPOSITORY, env: { PATH: process.env.PATH ?? "", HOME, ...env }, stdio: ["pipe", "pipe", "pipe"] });
}

export function collect(child: ChildProcess): Promise<Run> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** Resolves with the port once the server logs that it is listening. */
export function listening(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = /"msg":"(?:webhook )?listening","port":(\d+)/.exec(buffered);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`exited with ${code} before listening: ${buffered}`)));
  });
}
