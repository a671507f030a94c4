// The files `invoke` and `admit` read: a path, or `-` for standard input; JSON, else YAML (one or
// more documents, as `kubectl get -o yaml` prints them). The YAML parser is loaded only then.
// YAML is read as kubectl reads it (sigs.k8s.io/yaml: go-yaml v2, YAML 1.1, turned into JSON), so
// the pod decided about is the one the API server would get: `<<` merges, on/yes/y are true,
// !!binary is its text, timestamps stay text; what kubectl cannot send as JSON is refused.
// A file is read up to the function's own body limit and no further: an endless one (`/dev/zero`,
// a pipe that never closes) is refused at once, not read until memory runs out.
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import type { DocumentOptions, ParseOptions, SchemaOptions } from "yaml";
import { MAX_BODY_BYTES } from "./http-edge.js";

export type InputFile = { readonly name: string; readonly values: unknown[] } | { readonly problem: string };

/** An input file larger than this is refused: no event or admission the function takes is larger. */
export const MAX_INPUT_BYTES = MAX_BODY_BYTES;

/** The documents of one input file, or why there are none (naming the file). */
export async function readDocuments(file: string, stdin?: () => Readable, maxBytes = MAX_INPUT_BYTES): Promise<InputFile> {
  const name = file === "-" ? "(stdin)" : file;
  let text: string;
  try {
    text = await readBounded(file === "-" && stdin !== undefined ? stdin() : createReadStream(file), maxBytes);
  } catch (error) {
    return { problem: `${name}: ${error instanceof TooLarge ? error.message : `cannot read: ${(error as Error).message}`}` };
  }
  try {
    return { name, values: await parseDocuments(text) };
  } catch (error) {
    if (error instanceof NotJson) return { problem: `${name}: ${error.message}` };
    return { problem: `${name}: neither JSON nor YAML: ${(error as Error).message.split("\n")[0]}` };
  }
}

class TooLarge extends Error {}

/** The whole stream as UTF-8, or TooLarge as soon as more than maxBytes arrived (the stream is then destroyed). */
export function readBounded(stream: Readable, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (chunk: Buffer | string) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size <= maxBytes) return void chunks.push(bytes);
      stream.off("end", end);
      stream.destroy();
      reject(new TooLarge(`larger than ${maxBytes} bytes (the most the function takes in one request); not read further`));
    });
    const end = () => resolve(Buffer.concat(chunks).toString("utf8"));
    stream.once("end", end);
    stream.once("error", reject);
  });
}

async function parseDocuments(text: string): Promise<unknown[]> {
  try {
    return [JSON.parse(text)];
  } catch (jsonError) {
    const { parseAllDocuments } = await import("yaml");
    const documents = parseAllDocuments(text, AS_KUBECTL);
    const list = Array.isArray(documents) ? documents : [documents];
    const broken = list.find((document) => document.errors.length > 0);
    if (broken !== undefined || list.length === 0) throw new Error(broken?.errors[0]?.message ?? (jsonError as Error).message);
    return list.map((document) => asKubectlSends(document.toJS() as unknown, [])).filter((value) => value !== null);
  }
}

/**
 * go-yaml v2's reading: YAML 1.1 with merge keys; but a timestamp read into an interface{} stays
 * a string, 1:30 (base 60) is not a number there, and integers are read with Go's syntax (0o755).
 */
const AS_KUBECTL: ParseOptions & DocumentOptions & SchemaOptions = {
  version: "1.1",
  merge: true,
  customTags: (tags) => [
    ...tags.filter((tag) => typeof tag !== "object" || (tag.tag !== "tag:yaml.org,2002:timestamp" && tag.format !== "TIME")),
    { tag: "tag:yaml.org,2002:int", format: "OCT", default: true, test: /^[-+]?0o[0-7_]+$/, resolve: (text: string) => (text.startsWith("-") ? -1 : 1) * Number.parseInt(text.replace(/^[-+]?0o|_/g, ""), 8) },
  ],
};

/** A parsed YAML value as the JSON kubectl would send; throws (naming where) for what JSON cannot hold. */
function asKubectlSends(value: unknown, path: readonly string[]): unknown {
  const where = path.length === 0 ? "the top" : path.join(".");
  if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  if (typeof value === "number" && !Number.isFinite(value)) throw new NotJson(`.inf or .nan at ${where}`);
  if (value instanceof Map || value instanceof Set) throw new NotJson(`a !!set or !!omap at ${where}`);
  if (Array.isArray(value)) return value.map((item, index) => asKubectlSends(item, [...path, String(index)]));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, asKubectlSends(item, [...path, key])]));
  }
  return value;
}

class NotJson extends Error {
  constructor(what: string) {
    super(`${what}: kubectl cannot turn it into JSON, so no API server would get this object`);
  }
}
