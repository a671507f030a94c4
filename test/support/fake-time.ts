// A sender on a clock that moves only when it sleeps: tests record every wait exactly and take no time.
import { silentLogger } from "../../handler/edges/log.js";
import { createPost, type SenderOptions } from "../../handler/edges/optune.js";

/** The clock starts at 2026-11-24T09:00:00Z, so HTTP dates in Retry-After can be written relative to it. */
export const FAKE_START = Date.parse("2026-11-24T09:00:00Z");

export function fakeTime(overrides: Partial<SenderOptions> = {}) {
  let clock = FAKE_START;
  const waits: number[] = [];
  const post = createPost({
    token: () => "t0k",
    timeoutMs: 2000,
    deadlineMs: 30_000,
    log: silentLogger,
    random: () => 0.5,
    now: () => clock,
    sleep: async (ms) => {
      waits.push(ms);
      clock += ms;
    },
    ...overrides,
  });
  return { post, waits, elapsed: () => clock - FAKE_START };
}
