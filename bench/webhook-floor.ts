// The webhook's floor: a bare node:https server that reads an AdmissionReview, parses it and
// answers allowed. With WFLOOR=W1 it first asks Optune once (WHATS_NEXT, to OPTUNE_URL over a
// keep-alive node:http agent) for a job pod: the one round trip a job admission must make when
// Optune answers MEASURE.
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";

const optune = new URL(process.env.OPTUNE_URL ?? "http://127.0.0.1:1/");
const agent = new http.Agent({ keepAlive: true });
type Review = { request?: { uid?: string; object?: { metadata?: { namespace?: string }; spec?: { containers?: Array<{ env?: Array<{ name: string; value?: string }> }> } } } };

function whatsNext(appId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const body = '{"event":"WHATS_NEXT","param":null}';
    const request = http.request({ host: optune.hostname, port: optune.port, method: "POST", path: optune.pathname.replace("{app_id}", appId), agent, headers: { "content-type": "application/json", "content-length": body.length } }, (response) => {
      response.resume();
      response.on("end", () => resolve());
    });
    request.on("error", reject);
    request.end(body);
  });
}

const server = https.createServer({ cert: readFileSync(process.env.WEBHOOK_TLS_CERT_FILE!), key: readFileSync(process.env.WEBHOOK_TLS_KEY_FILE!) }, (request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const review = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Review;
    const object = review.request?.object;
    const appId = object?.spec?.containers?.[0]?.env?.find((variable) => variable.name === "JOBID")?.value;
    const answer = () => {
      const text = JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: review.request?.uid, allowed: true } });
      response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
    };
    if (process.env.WFLOOR === "W1" && appId !== undefined && object?.metadata?.namespace === "batch") whatsNext(appId).then(answer, answer);
    else answer();
  });
});
server.listen(Number(process.env.WEBHOOK_PORT ?? "8443"));
// SIGTERM ends it normally, so that a --cpu-prof profile (BENCH_PROF) is written.
process.on("SIGTERM", () => process.exit(0));
