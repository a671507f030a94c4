// Composition: from a Config to a ready-to-call handler, with its delivery and dedupe.
// The server, the CLI's invoke and the demo all build the function here, so they behave alike.
import type { Config } from "./config.js";
import { createHandler, type Handle } from "./handle.js";
import { memoryLedger } from "./ledger.js";
import { createLogger, type Logger } from "./log.js";
import { createDeliver, createPost, type Deliver } from "./optune.js";

export interface FunctionIo {
  /** Where {"url","message"} lines go (stdout). */
  readonly print: (line: string) => void;
  /** Where log lines go (stderr). */
  readonly logLine?: (line: string) => void;
  /** Also print the lines of messages that were sent (the CLI's invoke does). */
  readonly echo?: boolean;
}

export interface ServoFunction {
  readonly config: Config;
  readonly log: Logger;
  readonly handle: Handle;
  readonly deliver: Deliver;
  /** The same delivery with a short deadline, for GOODBYE while the platform waits to kill us. */
  readonly deliverBriefly: Deliver;
}

/** GOODBYE must fit in a termination grace period (30 s by default) after draining. */
const BRIEF_DEADLINE_MS = 5000;

export function createFunction(config: Config, io: FunctionIo): ServoFunction {
  const log = createLogger(config.logLevel, io.logLine);
  const deliverWithin = (deadlineMs: number) =>
    createDeliver({
      optuneUrl: config.optuneUrl,
      account: config.account,
      dryRun: config.dryRun,
      print: io.print,
      ...(io.echo === undefined ? {} : { echo: io.echo }),
      post: createPost({ token: config.authToken, timeoutMs: Math.min(config.sendTimeoutMs, deadlineMs), deadlineMs, log }),
    });
  const deliver = deliverWithin(config.sendDeadlineMs);
  const handle = createHandler({ criteria: config, ledger: memoryLedger(), deliver, log });
  return { config, log, handle, deliver, deliverBriefly: deliverWithin(Math.min(config.sendDeadlineMs, BRIEF_DEADLINE_MS)) };
}
