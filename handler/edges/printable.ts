// Text that ends up in YAML, logs, URLs or CEL must be one line of printable characters. YAML 1.1
// (kubectl's parser) breaks lines at NEL (U+0085), LS and PS (U+2028/U+2029), which JavaScript's \s
// does not match; C0/C1 controls and bidi overrides make text read differently than it parses.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/u;

// Characters that render as nothing, so two names that look the same are not: format characters
// (Cf: U+00AD, U+061C, U+200B-U+200F, U+2060...), the Hangul fillers, the combining grapheme joiner,
// the variation selectors and the blank Braille pattern.
const INVISIBLE = /[\p{Cf}\u034f\u115f\u1160\u180b-\u180d\u2800\u3164\ufe00-\ufe0f\uffa0]/u;

/** The first character that may not appear in one line of configuration, as "U+0085 at 5", or undefined. */
export function unprintable(value: string): string | undefined {
  return firstOf(UNPRINTABLE, value);
}

/** The first character of a name that would not be seen where it is printed, as "U+200B at 16", or undefined. */
export function invisible(value: string): string | undefined {
  return firstOf(INVISIBLE, value);
}

const UNSEEN = new RegExp(`${UNPRINTABLE.source}|${INVISIBLE.source}`, "gu");

/**
 * JSON text with every unprintable or invisible character written as a \u escape (JSON.stringify
 * leaves C1 controls, bidi overrides and U+2028 raw): the same value for a parser, plain text for
 * a terminal or a log viewer. Only for JSON text, where such characters can only be inside strings.
 */
export function escapeInJson(json: string): string {
  return json.replace(UNSEEN, (found) => Array.from({ length: found.length }, (_, index) => `\\u${found.charCodeAt(index).toString(16).padStart(4, "0")}`).join(""));
}

function firstOf(characters: RegExp, value: string): string | undefined {
  const match = characters.exec(value);
  if (match === null) return undefined;
  return `U+${match[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")} at ${match.index}`;
}

/** The first flag whose value is not one printable line, as a usage message, or undefined. */
export function unprintableFlag(values: Readonly<Record<string, unknown>>): string | undefined {
  for (const [name, value] of Object.entries(values)) {
    const found = typeof value === "string" ? unprintable(value) : undefined;
    if (found !== undefined) return `--${name} must be one line of printable characters (no control characters or line breaks), found ${found}`;
  }
  return undefined;
}

/**
 * Remote text made safe for a terminal line: every character `unprintable` names (ESC and the other
 * C0/C1 controls, line breaks, bidi overrides, U+2028/U+2029) written as a visible \u escape, and the
 * whole clipped to `max` characters with an ellipsis.
 */
export function printableLine(value: string, max: number): string {
  const escaped = value.replace(new RegExp(UNPRINTABLE.source, "gu"), (found) => `\\u${found.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`);
  if (escaped.length <= max) return escaped;
  const cut = /[\ud800-\udbff]/.test(escaped[max - 2] ?? "") ? max - 2 : max - 1;
  return `${escaped.slice(0, cut)}…`;
}
