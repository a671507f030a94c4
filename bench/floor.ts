// The floors: what any function must do at the least for the same work, with the least code.
//   A   (FLOOR unset): a bare node:http server that reads the body, parses it, reads the first
//       container's state, and answers 204. It never reports anything.
//   A′  (FLOOR=A1): A, plus, for an event that is a finished job seen for the first time, one POST
//       of the MEASUREMENT to the Optune stand-in (OPTUNE_URL) over a keep-alive node:http agent
//       before answering.
//   A″  (FLOOR=A2): A′, plus the two PATCHes of a claim (sending, then sent) to the Kubernetes
//       stand-in (KUBE_URL, KUBE_TOKEN, KUBE_CA_FILE) over a keep-alive node:https agent; the
//       MEASUREMENT is built from the pod the first PATCH answers, as ours builds it.
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";

const floor = process.env.FLOOR ?? "A";
const optune = new URL(process.env.OPTUNE_URL ?? "http://127.0.0.1:1/");
const optuneAgent = new http.Agent({ keepAlive: true });
const kubeAgent = process.env.KUBE_CA_FILE === undefined ? undefined : new https.Agent({ keepAlive: true, ca: readFileSync(process.env.KUBE_CA_FILE) });
const kube = process.env.KUBE_URL === undefined ? undefined : new URL(process.env.KUBE_URL);
const seen = new Set<string>();

type Pod = {
  metadata?: { namespace?: string; name?: string; uid?: string; resourceVersion?: string; annotations?: Record<string, string> };
  spec?: { containers?: Array<{ env?: Array<{ name: string; value?: string }>; resources?: unknown }> };
  status?: { containerStatuses?: Array<{ state?: { terminated?: { startedAt: string; finishedAt: string; exitCode: number; reason?: string } } }> };
};

function send(options: https.RequestOptions, body: string, agent: http.Agent | undefined, secure: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = (secure ? https : http).request({ ...options, agent, headers: { ...options.headers, "content-length": Buffer.byteLength(body) } }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
    request.on("error", reject);
    request.end(body);
  });
}

const patch = (pod: Pod, body: object) =>
  send({ host: kube!.hostname, port: kube!.port, method: "PATCH", path: `/api/v1/namespaces/${pod.metadata!.namespace}/pods/${pod.metadata!.name}`, headers: { "content-type": "application/merge-patch+json", authorization: `Bearer ${process.env.KUBE_TOKEN}` } }, JSON.stringify(body), kubeAgent, true);

function measurement(pod: Pod): string {
  const terminated = pod.status!.containerStatuses![0]!.state!.terminated!;
  const duration = (Date.parse(terminated.finishedAt) - Date.parse(terminated.startedAt)) / 1000;
  return JSON.stringify({
    event: "MEASUREMENT",
    param: {
      metrics: { duration: { value: duration, unit: "s" }, perf: { value: 1 / duration, unit: "1/s" } },
      annotations: { resources: JSON.stringify(pod.spec!.containers![0]!.resources), exitcode: terminated.exitCode, reason: terminated.reason, pod: `${pod.metadata!.namespace}/${pod.metadata!.name}`, uid: pod.metadata!.uid },
    },
  });
}

async function report(pod: Pod): Promise<void> {
  const appId = pod.spec?.containers?.[0]?.env?.find((variable) => variable.name === "JOBID")?.value;
  const uid = pod.metadata?.uid;
  if (appId === undefined || uid === undefined || pod.metadata?.namespace !== "batch" || pod.status?.containerStatuses?.[0]?.state?.terminated === undefined || seen.has(uid)) return;
  seen.add(uid);
  let reported = pod;
  if (floor === "A2") reported = JSON.parse(await patch(pod, { metadata: { resourceVersion: pod.metadata!.resourceVersion, annotations: { "optune.ai/measurement": JSON.stringify({ state: "sending", instance: "floor", at: new Date().toISOString() }) } } })) as Pod;
  await send({ host: optune.hostname, port: optune.port, method: "POST", path: optune.pathname.replace("{app_id}", appId), headers: { "content-type": "application/json" } }, measurement(reported), optuneAgent, false);
  if (floor === "A2") await patch(pod, { metadata: { annotations: { "optune.ai/measurement": JSON.stringify({ state: "sent", at: new Date().toISOString() }) } } });
}

const server = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { data?: unknown };
    // Structured mode carries the pod in `data`; binary mode is the pod itself.
    const pod = (request.headers["content-type"] === "application/cloudevents+json" ? parsed.data : parsed) as Pod;
    if (pod?.status?.containerStatuses?.[0]?.state === undefined) response.setHeader("X-State", "none");
    if (floor === "A") return void response.writeHead(204).end();
    report(pod).then(
      () => response.writeHead(204).end(),
      () => response.writeHead(503).end(),
    );
  });
});
server.listen(Number(process.env.PORT ?? "8080"));
// SIGTERM ends it normally, so that a --cpu-prof profile (BENCH_PROF) is written.
process.on("SIGTERM", () => process.exit(0));
