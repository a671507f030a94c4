// What the demo starts (its function, its webhook, Prometheus) and the folders it makes, ended
// however the demo ends: normally, on SIGTERM, SIGINT or SIGHUP, when its output is closed
// (`demo | head`), or on an error. Only SIGKILL leaves them, as it would any process tree.
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { constants } from "node:os";

const children = new Set<ChildProcess>();
const folders = new Set<string>();
let installed = false;

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
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.once(signal, () => {
      endAll();
      process.exit(128 + constants.signals[signal]);
    });
  }
  // A reader that went away (`demo | head`): stop quietly, as a Unix filter does.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    endAll();
    process.exit(0);
  });
}
