// Files that Kubernetes, OpenFaaS and cert-manager replace in place under a running process: the
// Optune token and the webhook's TLS pair. A mounted Secret is updated by swapping a symlink, so
// the files are polled with stat (which follows it), not watched with inotify.
import { unwatchFile, watchFile, type Stats } from "node:fs";
import { isToken, readTokenFile } from "./config.js";
import type { Logger } from "./log.js";

export const SECRET_POLL_MS = 10_000;

/** Calls `onChange` after any of `paths` changes on disk; the returned function stops watching. Never keeps the process alive. */
export function watchFiles(paths: readonly string[], onChange: () => void, intervalMs = SECRET_POLL_MS): () => void {
  const listener = (current: Stats, previous: Stats) => {
    if (current.mtimeMs !== previous.mtimeMs || current.ino !== previous.ino || current.size !== previous.size) onChange();
  };
  for (const path of paths) watchFile(path, { interval: intervalMs, persistent: false }, listener);
  return () => {
    for (const path of paths) unwatchFile(path, listener);
  };
}

export interface TokenSource {
  /** The token to send now. */
  readonly current: () => string | undefined;
  readonly stop: () => void;
}

/**
 * The Optune token: fixed when it came from OPTUNE_AUTH_TOKEN; read again from
 * OPTUNE_AUTH_TOKEN_FILE whenever the file changes. A new content that is not a token is logged
 * and the last good token kept.
 */
export function tokenSource(initial: string | undefined, file: string | undefined, log: Logger, intervalMs = SECRET_POLL_MS): TokenSource {
  let token = initial;
  if (file === undefined) return { current: () => token, stop: () => {} };
  const stop = watchFiles(
    [file],
    () => {
      let next: string;
      try {
        next = readTokenFile(file).trim();
      } catch (error) {
        return log.error("cannot read the new Optune token; keeping the previous one", { file, error: (error as Error).message });
      }
      if (!isToken(next)) return log.error("the new Optune token file does not hold one token; keeping the previous one", { file });
      if (next !== token) log.info("Optune token read again", { file });
      token = next;
    },
    intervalMs,
  );
  return { current: () => token, stop };
}
