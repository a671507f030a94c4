// The Kubernetes API stand-in for the production path: HTTPS with a bearer token, as a pod's
// service account reaches the API server, answering at once. A PATCH of a pod answers the pod (the
// finished job pod of the benchmark with that uid) with the patch's annotations and a new
// resourceVersion, as the API server does; LimitRanges and ResourceQuotas are empty lists, and a
// watch of them (the webhook's cache) is held open after one bookmark, as a quiet namespace's. It keeps
// nothing but counts. Arguments: a JSON object {cert, key, token}; prints {"port"} once listening.
import { readFileSync } from "node:fs";
import https from "node:https";
import { finishedJobPod } from "./events.js";

const options = JSON.parse(process.argv[2] ?? "{}") as { cert: string; key: string; token: string };
const counts: Record<string, number> = {};
let version = 1000;
const POD = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/pod-([^/?]+)/;

const server = https.createServer({ cert: readFileSync(options.cert), key: readFileSync(options.key) }, (request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const answer = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
    };
    if (request.headers.authorization !== `Bearer ${options.token}`) return answer(401, { kind: "Status", status: "Failure", code: 401 });
    const url = request.url ?? "";
    const watching = /[?&]watch=1/.test(url);
    const key = `${watching ? "WATCH" : request.method} ${url.includes("/limitranges") ? "limitranges" : url.includes("/resourcequotas") ? "resourcequotas" : "pods"}`;
    counts[key] = (counts[key] ?? 0) + 1;
    if (watching) {
      response.writeHead(200, { "content-type": "application/json" });
      return void response.write(`${JSON.stringify({ type: "BOOKMARK", object: { kind: "LimitRange", apiVersion: "v1", metadata: { resourceVersion: "1" } } })}\n`);
    }
    if (url.includes("/limitranges")) return answer(200, { kind: "LimitRangeList", apiVersion: "v1", metadata: { resourceVersion: "1" }, items: [] });
    if (url.includes("/resourcequotas")) return answer(200, { kind: "ResourceQuotaList", apiVersion: "v1", metadata: { resourceVersion: "1" }, items: [] });
    const match = POD.exec(url);
    if (match === null) return answer(404, { kind: "Status", status: "Failure", code: 404 });
    const pod = finishedJobPod(match[2]!);
    if (request.method === "PATCH") {
      const patch = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { metadata?: { annotations?: Record<string, string>; finalizers?: string[] | null } };
      pod.metadata.annotations = { ...pod.metadata.annotations, ...patch.metadata?.annotations };
      // The hold (a finalizer) the claim adds: the answer carries it, so the sent mark lets it go.
      if (patch.metadata?.finalizers !== undefined) (pod.metadata as { finalizers?: string[] | null }).finalizers = patch.metadata.finalizers;
    }
    pod.metadata.resourceVersion = String(++version);
    answer(200, pod);
  });
});
server.on("secureConnection", () => (counts.connections = (counts.connections ?? 0) + 1));
server.listen(0, "127.0.0.1", () => process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`));
process.on("SIGUSR2", () => process.stdout.write(`${JSON.stringify(counts)}\n`));
