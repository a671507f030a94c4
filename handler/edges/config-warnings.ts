// What the configuration cannot refuse but should not pass in silence, said once at start: a
// variable of ours that is misspelt (it would be ignored), an account whose messages Optune will
// refuse for want of a token. Each warning is one line; a variable's value is never shown.
import { DEFAULT_OPTUNE_URL, KNOWN_VARIABLES, type Config } from "./config.js";

/** Prefixes that are ours: a variable with one that we do not read is a typo (KUBERNETES_* is the kubelet's). */
const OUR_PREFIXES = ["OPTUNE_", "KUBE_"];

export function startWarnings(env: Readonly<Record<string, string | undefined>>, config: Config): string[] {
  return [...unknownVariables(env), ...missingToken(config)];
}

function unknownVariables(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.keys(env)
    .filter((name) => env[name] !== undefined && OUR_PREFIXES.some((prefix) => name.startsWith(prefix)) && !KNOWN_VARIABLES.includes(name))
    .sort()
    .map((name) => {
      const guess = resembling(name);
      return `${name} is set, but servo-k8s-multijob reads no such variable${guess === undefined ? "" : `: did you mean ${guess}?`}`;
    });
}

/** Optune's own URL refuses a message without a token; another URL (a proxy, a stand-in) may not need one. */
function missingToken(config: Config): string[] {
  if (config.dryRun || config.account === undefined || config.optuneUrl !== DEFAULT_OPTUNE_URL || config.authToken !== undefined || config.authTokenFile !== undefined) return [];
  return ["OPTUNE_ACCOUNT is set, but no token is (OPTUNE_AUTH_TOKEN or OPTUNE_AUTH_TOKEN_FILE): Optune will refuse the messages sent without one"];
}

/** The variable we read that is nearest to `name`, within two edits. */
function resembling(name: string): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const known of KNOWN_VARIABLES) {
    const distance = editDistance(name, known);
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { name: known, distance };
  }
  return best?.name;
}

/** Levenshtein distance: insertions, deletions and substitutions of one character. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}
