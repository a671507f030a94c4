// A Kubernetes API server for LimitRanges and ResourceQuotas only, speaking LIST and WATCH as the
// real one does: a LIST answers the items and the current resourceVersion; a WATCH
// (?watch=1&resourceVersion=…) replays the changes after that version, then streams each new one
// as a line of JSON and holds the connection open. compact() forgets the history, as etcd's
// compaction does: each open watch gets an ERROR event with code 410 and ends, and so does a watch
// from an older version. cut() drops every open watch; refuse() answers a verb with 403.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { writeKubeconfig } from "./fake-apiserver.js";

export type PolicyKind = "limitranges" | "resourcequotas";
type Verb = "list" | "watch";
interface Change {
  readonly version: number;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly object: Record<string, unknown>;
}

export interface FakePolicies {
  readonly kubeconfig: string;
  /** Requests answered so far, per verb. */
  readonly count: Record<Verb, number>;
  put(namespace: string, kind: PolicyKind, name: string, spec: object, status?: object): void;
  remove(namespace: string, kind: PolicyKind, name: string): void;
  compact(): void;
  cut(): void;
  refuse(verb: Verb | undefined): void;
  /** Every watch from now on ends at once (200, no event), as a proxy that does not stream might. */
  endWatches(atOnce: boolean): void;
  close(): Promise<void>;
}

const GONE = `${JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, message: "too old resource version" } })}\n`;

export async function startFakePolicies(): Promise<FakePolicies> {
  let version = 100;
  let compactedTo = 0;
  let refused: Verb | undefined;
  let endAtOnce = false;
  const objects = new Map<string, Map<string, Record<string, unknown>>>();
  const history = new Map<string, Change[]>();
  const watchers = new Map<string, Set<http.ServerResponse>>();
  const count: Record<Verb, number> = { list: 0, watch: 0 };
  const key = (namespace: string, kind: string) => `${namespace}/${kind}`;
  const of = <T>(map: Map<string, T>, at: string, empty: () => T): T => map.get(at) ?? (map.set(at, empty()), map.get(at)!);
  const line = (change: Change) => `${JSON.stringify({ type: change.type, object: change.object })}\n`;

  const change = (namespace: string, kind: PolicyKind, type: Change["type"], object: Record<string, unknown>) => {
    const at = key(namespace, kind);
    const recorded: Change = { version: ++version, type, object: { ...object, metadata: { ...(object.metadata as object), resourceVersion: String(version) } } };
    of(history, at, () => []).push(recorded);
    for (const watcher of watchers.get(at) ?? []) watcher.write(line(recorded));
  };

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://fake");
    const match = /^\/api\/v1\/namespaces\/([^/]+)\/(limitranges|resourcequotas)$/.exec(url.pathname);
    const answer = (status: number, body: unknown) => response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (match === null) return answer(404, { kind: "Status", code: 404 });
    const [, namespace, kind] = match as unknown as [string, string, PolicyKind];
    const at = key(namespace, kind);
    const verb: Verb = url.searchParams.get("watch") === "1" ? "watch" : "list";
    count[verb]++;
    if (refused === verb) return answer(403, { kind: "Status", code: 403 });
    if (verb === "list") return answer(200, { kind: "List", metadata: { resourceVersion: String(version) }, items: [...(objects.get(at)?.values() ?? [])] });
    const from = Number(url.searchParams.get("resourceVersion"));
    response.writeHead(200, { "content-type": "application/json" });
    if (from < compactedTo) return response.end(GONE);
    if (endAtOnce) return response.end();
    for (const missed of (history.get(at) ?? []).filter((recorded) => recorded.version > from)) response.write(line(missed));
    const open = of(watchers, at, () => new Set());
    open.add(response);
    response.on("close", () => open.delete(response));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

  return {
    kubeconfig: writeKubeconfig(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    count,
    put(namespace, kind, name, spec, status) {
      const kept = of(objects, key(namespace, kind), () => new Map());
      const type = kept.has(name) ? "MODIFIED" : "ADDED";
      const object = { metadata: { name, namespace }, spec, ...(status === undefined ? {} : { status }) };
      kept.set(name, object);
      change(namespace, kind, type, object);
    },
    remove(namespace, kind, name) {
      const object = objects.get(key(namespace, kind))?.get(name);
      if (object === undefined) return;
      objects.get(key(namespace, kind))!.delete(name);
      change(namespace, kind, "DELETED", object);
    },
    compact: () => {
      compactedTo = version;
      for (const open of watchers.values()) for (const watcher of open) watcher.end(GONE);
    },
    cut: () => {
      for (const open of watchers.values()) for (const watcher of open) watcher.destroy();
    },
    refuse: (verb) => void (refused = verb),
    endWatches: (atOnce) => void (endAtOnce = atOnce),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
