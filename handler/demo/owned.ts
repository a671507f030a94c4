// What the demo starts (its function, its webhook, Prometheus) and the folders it makes, ended
// however the demo ends: normally, on SIGTERM, SIGINT or SIGHUP, when its output is closed
// (`demo | head`), or on an error. Only SIGKILL leaves them, as it would any process tree.
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { constants } from "node:os";

const children = new Set<ChildProcess>();
const folders = new Set<string>();
let installed = false;
let ending = false;

/** Whether the demo is being ended (a signal, its reader gone): what fails now fails because of it. */
export const isEnding = (): boolean => ending;

export function ownChild<T extends ChildProcess>(child: T): T {
  install();
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export function ownFolder(folder: string): string {
  install();
  folders.add(folder);
  return folder;
}

export function releaseFolder(folder: string): void {
  rmSync(folder, { recursive: true, force: true });
  folders.delete(folder);
}

/** Synchronous, so that it also runs in the "exit" event. */
function endAll(): void {
  for (const child of children) child.kill("SIGTERM");
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  children.clear();
  folders.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once("exit", endAll);
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.once(signal, () => void endAndExit(128 + constants.signals[signal]));
  // A reader that went away (`demo | head`): stop quietly, as a Unix filter does.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    void endAndExit(0);
  });
}

/** Asks the children to stop and waits for them (their GOODBYE still reaches the stand-in), at most 5 s, then kills what is left. */
export async function endAndExit(code: number): Promise<never> {
  if (ending) return new Promise<never>(() => {});
  ending = true;
  const running = [...children];
  const exited = Promise.all(running.map((child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once("exit", resolve)))));
  for (const child of running) child.kill("SIGTERM");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  for (const child of running) child.kill("SIGKILL");
  // Reaped before we go, so that none is left a zombie under an init that does not reap.
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
  endAll();
  process.exit(code);
}
