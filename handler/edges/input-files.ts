// The files `invoke` and `admit` read: a path, or `-` for standard input; JSON, else YAML (one or
// more documents, as `kubectl get -o yaml` prints them). The YAML parser is loaded only then.
import { readFile } from "node:fs/promises";

export type InputFile = { readonly name: string; readonly values: unknown[] } | { readonly problem: string };

/** The documents of one input file, or why there are none (naming the file). */
export async function readDocuments(file: string, stdin?: () => Promise<string>): Promise<InputFile> {
  const name = file === "-" ? "(stdin)" : file;
  let text: string;
  try {
    text = file === "-" && stdin !== undefined ? await stdin() : await readFile(file, "utf8");
  } catch (error) {
    return { problem: `${name}: cannot read: ${(error as Error).message}` };
  }
  try {
    return { name, values: await parseDocuments(text) };
  } catch (error) {
    return { problem: `${name}: neither JSON nor YAML: ${(error as Error).message.split("\n")[0]}` };
  }
}

async function parseDocuments(text: string): Promise<unknown[]> {
  try {
    return [JSON.parse(text)];
  } catch (jsonError) {
    const { parseAllDocuments } = await import("yaml");
    const documents = parseAllDocuments(text);
    const list = Array.isArray(documents) ? documents : [documents];
    const broken = list.find((document) => document.errors.length > 0);
    if (broken !== undefined || list.length === 0) throw new Error(broken?.errors[0]?.message ?? (jsonError as Error).message);
    return list.map((document) => document.toJS() as unknown).filter((value) => value !== null);
  }
}
