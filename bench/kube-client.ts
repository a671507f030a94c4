// The Kubernetes request path: CPU per call in this process, against the stand-in in another,
// sequentially, for a pod PATCH and the two policy LISTs: (1) through our edge (handler/edges/
// kubernetes.ts); (2) bare node:https with a keep-alive agent and the options the client applies
// for the kubeconfig's auth (KubeConfig.applyToHTTPSOptions), the answer JSON.parsed: the floor.
// Before the edge left @kubernetes/client-node's request path, (1) was 971 µs against 248 µs.
import https from "node:https";
import { connectKubernetes, loadKubernetesClient } from "../handler/edges/kubernetes.js";

export interface ClientCosts {
  readonly clientPatchMicros: number;
  /** The same PATCH with its answer read but not parsed (the sent mark's). */
  readonly clientPatchUnparsedMicros: number;
  readonly httpsPatchMicros: number;
  readonly clientListMicros: number;
  readonly httpsListMicros: number;
}

export async function kubeClientCosts(kubeconfig: string, iterations: number): Promise<ClientCosts> {
  const api = connectKubernetes({ kind: "files", paths: [kubeconfig] }, { timeoutMs: 10_000 });
  const client = await loadKubernetesClient();
  const config = new client.KubeConfig();
  config.loadFromFile(kubeconfig);
  const server = new URL(config.getCurrentCluster()!.server);
  const options: https.RequestOptions = {};
  await config.applyToHTTPSOptions(options);
  const agent = new https.Agent({ keepAlive: true, ...(options.ca === undefined ? {} : { ca: options.ca }), ...(options.cert === undefined ? {} : { cert: options.cert }), ...(options.key === undefined ? {} : { key: options.key }) });
  const raw = (method: string, path: string, body?: string) =>
    new Promise<unknown>((resolve, reject) => {
      const request = https.request(
        { host: server.hostname, port: server.port, method, path, agent, headers: { ...(options.headers as Record<string, string>), ...(body === undefined ? {} : { "content-type": "application/merge-patch+json", "content-length": Buffer.byteLength(body) }) } },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  const patch = { metadata: { annotations: { "optune.ai/measurement": '{"state":"sent"}' } } };
  const time = async (work: (i: number) => Promise<unknown>) => {
    for (let i = 0; i < Math.min(200, iterations); i++) await work(i);
    const before = process.cpuUsage();
    for (let i = 0; i < iterations; i++) await work(i);
    const used = process.cpuUsage(before);
    return Math.round(((used.user + used.system) / iterations) * 10) / 10;
  };
  return {
    clientPatchMicros: await time((i) => api.patch("batch", `pod-k${i}`, patch)),
    clientPatchUnparsedMicros: await time((i) => api.patch("batch", `pod-k${i}`, patch, { answer: false })),
    httpsPatchMicros: await time((i) => raw("PATCH", `/api/v1/namespaces/batch/pods/pod-k${i}`, JSON.stringify(patch))),
    clientListMicros: await time(() => api.policies("batch")),
    httpsListMicros: await time(async () => Promise.all([raw("GET", "/api/v1/namespaces/batch/limitranges"), raw("GET", "/api/v1/namespaces/batch/resourcequotas")])),
  };
}
