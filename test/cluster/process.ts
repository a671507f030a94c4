// One real component as a child process: its output kept (the tail goes into an error when it
// fails), stopped by the PID we hold — SIGTERM, then SIGKILL after a grace — never by name.
import { spawn, type ChildProcess } from "node:child_process";

export interface Component {
  readonly name: string;
  readonly child: ChildProcess;
  /** The last lines it printed, for an error message. */
  tail(chars?: number): string;
  /** Rejects when it exits (for racing against readiness); never resolves. */
  readonly exited: Promise<never>;
  stop(graceMs?: number): Promise<void>;
}

export function startComponent(name: string, binary: string, args: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): Component {
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], env: env as NodeJS.ProcessEnv });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-20_000);
    if (process.env.DEBUG_CLUSTER?.split(",").includes(name)) process.stderr.write(`[${name}] ${chunk}`);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<never>((_, reject) => {
    child.once("exit", (code, signal) => reject(new Error(`${name} exited (${code ?? signal}):\n${output.slice(-3000)}`)));
    child.once("error", (error) => reject(new Error(`${name} could not start: ${error.message}`)));
  });
  exited.catch(() => {});
  return {
    name,
    child,
    tail: (chars = 3000) => output.slice(-chars),
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** Polls `ready` until it says true, failing early if `component` exits, or after `ms`. */
export async function waitUntil(what: string, ready: () => Promise<boolean>, components: readonly Component[], ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  const crashed = Promise.race(components.map((component) => component.exited));
  for (;;) {
    const ok = await Promise.race([ready().catch(() => false), crashed]);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${ms / 1000} s:\n${components.map((component) => `[${component.name}] ${component.tail(1500)}`).join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
