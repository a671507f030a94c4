// One JSON line per log record, on stderr (stdout carries only the {"url","message"} lines).
// Much of what is logged comes from remotes: the line is escaped so that it is plain text.
import { escapeInJson } from "./printable.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  readonly level: LogLevel;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const enabled = (at: LogLevel): boolean => RANK[at] >= RANK[level];
  const emit = (at: LogLevel) => {
    const head = `{"time":"`;
    const middle = `","level":"${at}","msg":`;
    return (msg: string, fields?: LogFields) => {
      if (!enabled(at)) return;
      // The fields' own JSON object, opened up: no copy of them is made for the line.
      const rest = fields === undefined ? "}" : `,${JSON.stringify(fields).slice(1)}`;
      write(`${escapeInJson(`${head}${new Date().toISOString()}${middle}${JSON.stringify(msg)}${rest === ",}" ? "}" : rest}`)}\n`);
    };
  };
  return { level, enabled, debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/** A logger that drops everything, for callers that want quiet. */
export const silentLogger: Logger = createLogger("error", () => {});

/** How often a summary line sums up what was not logged a line each. */
export const SUMMARY_INTERVAL_MS = 60_000;

export interface PeriodicSummary<K> {
  /** Counts one more of `key` for the next summary. */
  count(key: K): void;
  /** Writes the summary now, if anything was counted, and starts over. */
  flush(): void;
  /** Stops the timer and writes what is pending (at shutdown). */
  close(): void;
}

/**
 * Counts by key, written by `write` once every SUMMARY_INTERVAL_MS (and at close) with the seconds
 * the counts cover, then started over; nothing counted, nothing written. The timer keeps no
 * process alive.
 */
export function periodicSummary<K>(write: (counts: ReadonlyMap<K, number>, seconds: number) => void, now: () => number = Date.now): PeriodicSummary<K> {
  const counts = new Map<K, number>();
  let since = now();
  const flush = () => {
    if (counts.size > 0) write(counts, Math.max(1, Math.round((now() - since) / 1000)));
    counts.clear();
    since = now();
  };
  const timer = setInterval(flush, SUMMARY_INTERVAL_MS).unref();
  return {
    count: (key) => void counts.set(key, (counts.get(key) ?? 0) + 1),
    flush,
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
