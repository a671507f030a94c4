// `check`, printed: the categories in order, each check ✔ (passed), ‼ (a warning) or ✖ (failed)
// with its hint indented below, and a last line with the verdict; or the same as JSON (-o json).
// Names and hints carry what the API server said: every one is escaped and clipped to one line.
import { printableLine } from "../edges/printable.js";
import { failed, type Category } from "./checks.js";

/** The longest name or hint printed, in characters (the rest is cut off with an ellipsis). */
export const MAX_TEXT = 300;

/** The categories with every name and hint one printable line of at most MAX_TEXT characters. */
function printable(categories: readonly Category[]): Category[] {
  return categories.map((category) => ({
    name: printableLine(category.name, MAX_TEXT),
    checks: category.checks.map((check) => ({ ...check, name: printableLine(check.name, MAX_TEXT), ...(check.hint === undefined ? {} : { hint: printableLine(check.hint, MAX_TEXT) }) })),
  }));
}

const MARK = { ok: "√", warning: "‼", failed: "×" } as const;
const UNICODE_MARK = { ok: "✔", warning: "‼", failed: "✖" } as const;

export function renderText(categories: readonly Category[], unicode = true): string {
  const marks = unicode ? UNICODE_MARK : MARK;
  const lines: string[] = [];
  for (const category of printable(categories)) {
    lines.push(category.name, "-".repeat(category.name.length));
    for (const check of category.checks) {
      lines.push(`${marks[check.status]} ${check.name}`);
      if (check.hint !== undefined) lines.push(`    ${check.hint}`);
    }
    lines.push("");
  }
  const warnings = categories.some((category) => category.checks.some((check) => check.status === "warning"));
  lines.push(failed(categories) ? `Status check results are ${marks.failed}` : warnings ? `Status check results are ${marks.ok}, with warnings` : `Status check results are ${marks.ok}`);
  return `${lines.join("\n")}\n`;
}

export function renderJson(categories: readonly Category[]): string {
  return `${JSON.stringify({ success: !failed(categories), categories: printable(categories) }, null, 2)}\n`;
}
