// The servo's command loop with Optune for one pod about to start (ADJUST.md section 1): ask
// WHATS_NEXT; DESCRIBE → DESCRIPTION, ask again; ADJUST → check, ADJUSTMENT, ask again; SLEEP →
// ask once more (a pod is waiting, so no sleeping); MEASURE or anything else → done. Bounded in
// questions and in time. The exchange with Optune is passed in, so the loop is plain logic.
import type { DeliveryResult } from "../edges/optune.js";
import type { Pod } from "../jobs/pod.js";
import type { ContainerSettings } from "../jobs/settings-annotation.js";
import { checkAdjust, description, type Ranges } from "./settings.js";

/** Sends one message to the pod's app within `deadlineMs`; `wantAnswer` reads the command in a 2xx answer. */
export type Exchange = (body: object, deadlineMs: number, wantAnswer: boolean) => Promise<DeliveryResult>;

export interface LoopInput {
  readonly pod: Pod;
  /** The job container's name: the component Optune tunes. */
  readonly component: string;
  readonly ranges: Ranges;
  readonly exchange: Exchange;
  readonly budgetMs: number;
  readonly now?: () => number;
  /** The MEASUREMENTs carry cpu_time and max_memory (PROMETHEUS_URL): the DESCRIPTION says so. */
  readonly resourceMetrics?: boolean;
}

export interface LoopResult {
  /**
   * The settings of the last ADJUST whose ADJUSTMENT Optune accepted, to apply: once Optune was told
   * they were applied, they are, even when a later question fails. Undefined: the pod runs unchanged.
   */
  readonly settings?: readonly ContainerSettings[];
  /** What went wrong with Optune (down, slow, answering garbage), for the warning and the log. */
  readonly problem?: string;
  /** The commands Optune gave, in order (for the log): known names only, anything else "other". */
  readonly commands: readonly string[];
  /** Refused ADJUSTs' messages. */
  readonly refused: readonly string[];
}

/** Questions asked at most for one pod. */
export const MAX_QUESTIONS = 8;

/** The commands the loop knows; any other is logged as "other", never as Optune wrote it. */
const KNOWN_COMMANDS = new Set(["DESCRIBE", "ADJUST", "SLEEP", "MEASURE", "WHATS_NEXT"]);

type Command = { readonly cmd: string; readonly param: unknown } | { readonly garbage: string };

/** A 2xx answer's command. No body, `{}` or no `cmd`: MEASURE, as the old daemon read it. */
export function parseCommand(answer: string | undefined): Command {
  if (answer === undefined || answer.trim() === "") return { cmd: "MEASURE", param: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer);
  } catch {
    return { garbage: "an answer that is not JSON" };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return { garbage: "an answer that is not a JSON object" };
  const { cmd, param } = parsed as { cmd?: unknown; param?: unknown };
  if (cmd === undefined) return { cmd: "MEASURE", param: undefined };
  return typeof cmd === "string" ? { cmd, param } : { garbage: "a cmd that is not a string" };
}

export async function commandLoop(input: LoopInput): Promise<LoopResult> {
  const now = input.now ?? Date.now;
  const deadline = now() + input.budgetMs;
  const commands: string[] = [];
  const refused: string[] = [];
  let settings: readonly ContainerSettings[] | undefined;
  let sleeps = 0;
  const budget = `${input.budgetMs / 1000} s`;

  /** Sends within what is left of the budget; a failure says why in a few words. */
  const send = async (event: string, param: unknown, wantAnswer = false): Promise<{ ok: true; answer?: string } | { ok: false; problem: string }> => {
    const left = deadline - now();
    if (left <= 0) return { ok: false, problem: `no answer within ${budget}` };
    const result = await input.exchange({ event, param }, left, wantAnswer);
    if (result.ok) return { ok: true, ...(result.answer === undefined ? {} : { answer: result.answer }) };
    if (result.status !== undefined) return { ok: false, problem: `answered ${result.status} to ${event}` };
    if (deadline - now() <= 0 || /^no answer/.test(result.error)) return { ok: false, problem: `no answer within ${budget}` };
    return { ok: false, problem: "cannot be reached" };
  };
  const unchanged = (problem: string): LoopResult => ({ problem, ...(settings === undefined ? {} : { settings }), commands, refused });

  for (let question = 1; question <= MAX_QUESTIONS; question++) {
    const asked = await send("WHATS_NEXT", null, true);
    if (!asked.ok) return unchanged(asked.problem);
    const command = parseCommand(asked.answer);
    if ("garbage" in command) return unchanged(`sent ${command.garbage}`);
    commands.push(KNOWN_COMMANDS.has(command.cmd) ? command.cmd : "other");
    switch (command.cmd) {
      case "DESCRIBE": {
        const described = await send("DESCRIPTION", description(input.pod, input.component, input.ranges, input.resourceMetrics === true));
        if (!described.ok) return unchanged(described.problem);
        continue;
      }
      case "ADJUST": {
        const check = checkAdjust(command.param, input.pod, input.ranges);
        if (!check.ok) refused.push(check.message);
        // The daemon answered success with an empty object on purpose: the backend had trouble with data there.
        const reply = await send("ADJUSTMENT", check.ok ? {} : { status: "failed", message: check.message });
        if (!reply.ok) return unchanged(reply.problem);
        // Only now does Optune know them as applied.
        if (check.ok) settings = check.settings;
        continue;
      }
      case "SLEEP":
        if (++sleeps < 2) continue;
        return done();
      default:
        return done();
    }
  }
  return unchanged(`gave no MEASURE in ${MAX_QUESTIONS} questions`);

  function done(): LoopResult {
    return { ...(settings === undefined ? {} : { settings }), commands, refused };
  }
}
