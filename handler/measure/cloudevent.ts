// The CloudEvents HTTP protocol binding (spec 1.0): binary, structured and batched content modes.
// Decoding lives here, at the edge; nothing else reads a header. We do not use the `cloudevents`
// SDK to decode: it invents an `id` when one is missing (we must answer 400), leaves validation to
// the caller, and costs ~35 µs more than JSON.parse per 8 KiB pod (~3x); the tests use it to encode.
import { excerpt, isRecord } from "../jobs/pod.js";

export interface CloudEvent {
  readonly specversion: string;
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly subject?: string;
  readonly time?: string;
  readonly datacontenttype?: string;
  readonly data?: unknown;
  readonly [extension: string]: unknown;
}

/** The request is not a valid CloudEvent: answer 400, the sender must not send it again. */
export class MalformedEvent extends Error {
  override readonly name = "MalformedEvent";
}

/** A batch with more items than MAX_BATCH_ITEMS: answered 413, none of it handled. */
export class BatchTooLarge extends Error {
  override readonly name = "BatchTooLarge";
}

/**
 * Events in one batched request at most. An ApiServerSource sends one event a request; a batch is
 * someone else's, and without a bound one request could make a thousand deliveries.
 */
export const MAX_BATCH_ITEMS = 100;

export type HttpHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface DecodedRequest {
  /** In a batch, an item that is not a valid CloudEvent is its MalformedEvent: the other items are still handled. */
  readonly events: readonly (CloudEvent | MalformedEvent)[];
  /** Batched content mode: the reply lists one outcome per event. */
  readonly batch: boolean;
}

const REQUIRED = ["specversion", "id", "source", "type"] as const;
const STRUCTURED = "application/cloudevents+json";
const BATCH = "application/cloudevents-batch+json";

/** Decodes one HTTP request (header names in lower case, as node:http gives them). */
export function decodeHttpRequest(headers: HttpHeaders, body: Buffer): DecodedRequest {
  const contentType = headerValue(headers["content-type"]);
  const media = mediaType(contentType);
  if (media === BATCH) {
    const events = parseJson(body, "batch body");
    if (!Array.isArray(events)) throw new MalformedEvent("a batch body must be a JSON array of CloudEvents");
    if (events.length === 0) throw new MalformedEvent("a batch body must hold at least one CloudEvent");
    if (events.length > MAX_BATCH_ITEMS) throw new BatchTooLarge(`a batch may hold at most ${MAX_BATCH_ITEMS} CloudEvents, this one holds ${events.length}`);
    return { events: events.map((event, index) => decodeItem(event, `batch item ${index}: `)), batch: true };
  }
  if (media === STRUCTURED) return { events: [structuredEvent(parseJson(body, "body"))], batch: false };
  if (headers["ce-specversion"] !== undefined) return { events: [binaryEvent(headers, contentType, media, body)], batch: false };
  throw new MalformedEvent(
    `not a CloudEvent: expected ce-* headers (binary mode) or content-type ${STRUCTURED} (structured mode), got content-type ${contentType ?? "(none)"}`,
  );
}

/** A CloudEvent in structured form (a JSON object), as in a request body or a file. */
export function structuredEvent(value: unknown, where = ""): CloudEvent {
  if (!isRecord(value)) throw new MalformedEvent(`${where}a structured CloudEvent must be a JSON object`);
  if (value.data_base64 === undefined) return checked(value, where);
  if (typeof value.data_base64 !== "string") throw new MalformedEvent(`${where}data_base64 must be a string`);
  const { data_base64: encoded, ...attributes } = value;
  const bytes = Buffer.from(encoded, "base64");
  const media = mediaType(typeof attributes.datacontenttype === "string" ? attributes.datacontenttype : undefined);
  return checked({ ...attributes, data: isJsonMedia(media) ? parseJson(bytes, "data_base64") : bytes }, where);
}

function decodeItem(value: unknown, where: string): CloudEvent | MalformedEvent {
  try {
    return structuredEvent(value, where);
  } catch (error) {
    if (error instanceof MalformedEvent) return error;
    throw error;
  }
}

function binaryEvent(headers: HttpHeaders, contentType: string | undefined, media: string | undefined, body: Buffer): CloudEvent {
  const attributes: Record<string, unknown> = {};
  for (const name in headers) {
    if (!name.startsWith("ce-")) continue;
    const value = headerValue(headers[name]);
    if (value !== undefined) attributes[name.slice(3)] = percentDecode(value);
  }
  if (contentType !== undefined) attributes.datacontenttype = contentType;
  if (body.length > 0) attributes.data = media === undefined || isJsonMedia(media) ? parseJson(body, "body") : body;
  return checked(attributes, "");
}

function checked(attributes: Record<string, unknown>, where: string): CloudEvent {
  for (const name of REQUIRED) {
    const value = attributes[name];
    if (typeof value !== "string" || value === "") {
      throw new MalformedEvent(`${where}missing required CloudEvent attribute "${name}"`);
    }
  }
  if (attributes.specversion !== "1.0") {
    throw new MalformedEvent(`${where}unsupported CloudEvents specversion ${excerpt(attributes.specversion)} (expected "1.0")`);
  }
  return attributes as CloudEvent;
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw new MalformedEvent(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

function headerValue(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === "string" ? value : value?.join(",");
}

/** "application/json; charset=utf-8" → "application/json". */
function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const semicolon = contentType.indexOf(";");
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

function isJsonMedia(media: string | undefined): boolean {
  return media === "application/json" || media === "text/json" || (media?.endsWith("+json") ?? false);
}

/** Binary-mode header values are percent-encoded where they hold non-printable or non-ASCII characters. */
function percentDecode(value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Binary content mode, as an ApiServerSource sends it: attributes as ce-* headers, data as the JSON body. */
export function toBinaryRequest(event: CloudEvent): { headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = { "content-type": event.datacontenttype ?? "application/json" };
  for (const [name, value] of Object.entries(event)) {
    if (name === "data" || name === "datacontenttype" || value === undefined) continue;
    // A lone surrogate cannot be percent-encoded (it is not Unicode): it becomes U+FFFD, as a UTF-8 encoder would write it.
    headers[`ce-${name}`] = String(value).toWellFormed().replace(/[^\x21-\x7e]|[%"]/gu, (character) => encodeURIComponent(character));
  }
  return { headers, body: event.data === undefined ? "" : JSON.stringify(event.data) };
}
