// Generators for property-based tests: real pods (the shared contract vectors, or the examples when
// they are not beside the repository) and their CloudEvent envelopes, mutated the way broken or
// hostile senders mutate them: types swapped, nulls, huge and deep values, unicode and lone
// surrogates, timestamps that are invalid, negative or far in the future, finishedAt before
// startedAt, duplicate container names, empty arrays.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import fc from "fast-check";
import { REPOSITORY } from "./cli.js";

type Json = unknown;
type Mutable = Record<string, unknown> | unknown[];

/** Every Pod in the contract vectors (or the example events), as the API server sent it. */
export function seedPods(): Array<Record<string, unknown>> {
  const contract = process.env.CONTRACT_DIR ?? resolve(REPOSITORY, "../shared/contract");
  const examples = join(REPOSITORY, "example/events");
  const dirs = [existsSync(contract) ? contract : undefined, examples].filter((dir): dir is string => dir !== undefined);
  const pods: Array<Record<string, unknown>> = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (typeof value !== "object" || value === null) return;
    const record = value as Record<string, unknown>;
    if (record.kind === "Pod" && typeof record.metadata === "object") pods.push(record);
    else for (const child of Object.values(record)) visit(child);
  };
  for (const dir of dirs) for (const name of readdirSync(dir).filter((file) => file.endsWith(".json"))) visit(JSON.parse(readFileSync(join(dir, name), "utf8")));
  return pods;
}

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));
const oddString = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.string({ unit: fc.oneof(loneSurrogate, fc.constantFrom("\n", "\r", "\u0000", "/", "%2F", "..", ".", "?", "#", "é", "☃", "🚀")) }),
  fc.constantFrom("", ".", "..", " ", "%", "%2e%2e", "{acct}", "{app_id}", "x".repeat(2000), "é".repeat(600)),
);
const timestamp = fc.oneof(
  fc.date({ min: new Date(-62_000_000_000_000), max: new Date(250_000_000_000_000), noInvalidDate: true }).map((date) => date.toISOString()),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString().replace(".000Z", "Z")),
  fc.constantFrom("1", "2", "0", "-1", "2026-11-24T09:01:04", "2026-11-24 09:01:04Z", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2026-02-31T00:00:00Z", "yesterday", "2026-11-24T09:01:04+25:00"),
);
const number = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, -0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, 137, 255));
/** A value nested `depth` levels, alternating objects and arrays. */
const deep = fc.integer({ min: 50, max: 900 }).map((depth) => {
  let value: Json = "x";
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { x: value } : [value];
  return value;
});
const scalarOrShape = fc.oneof(
  { weight: 3, arbitrary: oddString },
  { weight: 2, arbitrary: timestamp },
  { weight: 2, arbitrary: number },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { toString: 1 }, [{ toString: 1 }], { valueOf: 1 }) },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
);

/** Paths a pod's meaning hangs on: mutations land there more often than at random. */
const TARGETS: ReadonlyArray<readonly (string | number)[]> = [
  ["kind"],
  ["metadata"],
  ["metadata", "name"],
  ["metadata", "namespace"],
  ["metadata", "uid"],
  ["metadata", "resourceVersion"],
  ["metadata", "creationTimestamp"],
  ["metadata", "annotations"],
  ["metadata", "annotations", "done-at"],
  ["metadata", "annotations", "optune.ai/measurement"],
  ["metadata", "annotations", "optune.ai/settings"],
  ["spec"],
  ["spec", "restartPolicy"],
  ["spec", "containers"],
  ["spec", "containers", 0],
  ["spec", "containers", 0, "name"],
  ["spec", "containers", 0, "env"],
  ["spec", "containers", 0, "env", 0],
  ["spec", "containers", 0, "env", 0, "value"],
  ["spec", "containers", 0, "resources"],
  ["spec", "containers", 0, "resources", "limits"],
  ["spec", "containers", 0, "resources", "limits", "cpu"],
  ["status"],
  ["status", "phase"],
  ["status", "containerStatuses"],
  ["status", "containerStatuses", 0],
  ["status", "containerStatuses", 0, "name"],
  ["status", "containerStatuses", 0, "restartCount"],
  ["status", "containerStatuses", 0, "state"],
  ["status", "containerStatuses", 0, "state", "terminated"],
  ["status", "containerStatuses", 0, "state", "terminated", "startedAt"],
  ["status", "containerStatuses", 0, "state", "terminated", "finishedAt"],
  ["status", "containerStatuses", 0, "state", "terminated", "exitCode"],
  ["status", "containerStatuses", 0, "lastState"],
];

type Mutation =
  | { readonly kind: "set"; readonly path: readonly (string | number)[]; readonly value: Json }
  | { readonly kind: "delete"; readonly path: readonly (string | number)[] }
  /** A random walk into the object, by child index, then a new value. */
  | { readonly kind: "walk"; readonly steps: readonly number[]; readonly value: Json }
  /** The job container's name given to every container (statuses then match several). */
  | { readonly kind: "duplicate-names" }
  /** finishedAt moved before startedAt. */
  | { readonly kind: "reverse-times" };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("set" as const), path: fc.constantFrom(...TARGETS), value: scalarOrShape }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), path: fc.constantFrom(...TARGETS) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("walk" as const), steps: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), value: scalarOrShape }) },
  { weight: 1, arbitrary: fc.constant({ kind: "duplicate-names" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reverse-times" as const }) },
);

function applyMutation(root: Record<string, unknown>, change: Mutation): void {
  const at = (path: readonly (string | number)[]): [Mutable, string | number] | undefined => {
    let node: unknown = root;
    for (const key of path.slice(0, -1)) {
      if (typeof node !== "object" || node === null) return undefined;
      node = (node as Record<string, unknown>)[key];
    }
    return typeof node === "object" && node !== null ? [node as Mutable, path.at(-1)!] : undefined;
  };
  switch (change.kind) {
    case "set": {
      const target = at(change.path);
      if (target) (target[0] as Record<string | number, unknown>)[target[1]] = change.value;
      return;
    }
    case "delete": {
      const target = at(change.path);
      if (target) delete (target[0] as Record<string | number, unknown>)[target[1]];
      return;
    }
    case "walk": {
      let node: unknown = root;
      for (const [index, step] of change.steps.entries()) {
        if (typeof node !== "object" || node === null) return;
        const keys = Object.keys(node);
        if (keys.length === 0) return;
        const key = keys[step % keys.length]!;
        if (index === change.steps.length - 1) (node as Record<string, unknown>)[key] = change.value;
        else node = (node as Record<string, unknown>)[key];
      }
      return;
    }
    case "duplicate-names": {
      const containers = (root.spec as { containers?: unknown })?.containers;
      if (Array.isArray(containers) && containers.length > 0) containers.push(structuredClone(containers[0]));
      const statuses = (root.status as { containerStatuses?: unknown })?.containerStatuses;
      if (Array.isArray(statuses) && statuses.length > 0) statuses.unshift({ ...(statuses[0] as object), state: { running: {} } });
      return;
    }
    case "reverse-times": {
      const terminated = ((root.status as { containerStatuses?: Array<{ state?: { terminated?: Record<string, unknown> } }> })?.containerStatuses ?? [])[0]?.state?.terminated;
      if (terminated && typeof terminated === "object") [terminated.startedAt, terminated.finishedAt] = [terminated.finishedAt, terminated.startedAt];
      return;
    }
  }
}

/** A seed pod with 0–5 mutations, as it would arrive: JSON text parsed again. */
export function mutatedPod(seeds: ReadonlyArray<Record<string, unknown>>): fc.Arbitrary<unknown> {
  return fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { maxLength: 5 })).map(([index, changes]) => {
    const pod = structuredClone(seeds[index]!);
    for (const change of changes) applyMutation(pod, change);
    return JSON.parse(JSON.stringify(pod)) as unknown;
  });
}

const ACTIONS = ["add", "update", "delete"] as const;

/** A structured CloudEvent around a (mutated) pod, itself sometimes mutated: attributes missing, of the wrong type, or other types. */
export function mutatedEvent(seeds: ReadonlyArray<Record<string, unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const type = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...ACTIONS).map((action) => `dev.knative.apiserver.resource.${action}`) },
    { weight: 1, arbitrary: fc.constantFrom(...ACTIONS).map((action) => `dev.knative.apiserver.ref.${action}`) },
    { weight: 1, arbitrary: fc.oneof(oddString, fc.constantFrom("dev.knative.apiserver.resource.", "dev.knative.sources.ping")) },
  );
  const envelopeChange = fc.oneof(
    fc.record({ attribute: fc.constantFrom("specversion", "id", "source", "type", "datacontenttype", "subject", "data", "name", "namespace"), value: scalarOrShape.map((value) => ({ value })) }),
    fc.record({ attribute: fc.constantFrom("specversion", "id", "source", "type", "data"), value: fc.constant(undefined) }),
  );
  return fc.record({ pod: mutatedPod(seeds), type, id: fc.uuid(), changes: fc.array(envelopeChange, { maxLength: 2 }), touch: fc.boolean() }).map(({ pod, type: eventType, id, changes, touch }) => {
    const event: Record<string, unknown> = { specversion: "1.0", id, source: "https://10.96.0.1:443", type: eventType, datacontenttype: "application/json", data: pod };
    if (touch) for (const change of changes) {
      if (change.value === undefined) delete event[change.attribute];
      else event[change.attribute] = change.value.value;
    }
    return event;
  });
}
