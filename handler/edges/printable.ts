// Text that ends up in YAML, logs, URLs or CEL must be one line of printable characters. YAML 1.1
// (kubectl's parser) breaks lines at NEL (U+0085), LS and PS (U+2028/U+2029), which JavaScript's \s
// does not match; C0/C1 controls and bidi overrides make text read differently than it parses.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/u;

/** The first character that may not appear in one line of configuration, as "U+0085 at 5", or undefined. */
export function unprintable(value: string): string | undefined {
  const match = UNPRINTABLE.exec(value);
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
