// A small cluster on loopback: the real API server (apiserver.ts), the real controller manager
// running the controllers a Job's life needs (Jobs, CronJobs, garbage collection, TTL after
// finished, ServiceAccounts, ResourceQuotas, pod GC), the real scheduler, and kwok playing the
// kubelet of one node with our pod stages (kwok-pod-stages.yaml): Jobs make pods, the scheduler
// binds them, kwok runs them for the time they ask, the Job controller counts them.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../handler/demo/cadvisor-stand-in.js";
import { kubernetes, kwokNodeStages, KWOK, type KubernetesRelease } from "./components.js";
import { startRealApiServer, type RealApiServer } from "./apiserver.js";
import { startComponent, waitUntil, type Component } from "./process.js";

const STAGES = fileURLToPath(new URL("../../../test/cluster/kwok-pod-stages.yaml", import.meta.url));
export const NODE = "kwok-node-0";

export interface ControlPlane {
  readonly server: RealApiServer;
  /** Stops and starts the controller manager (e.g. to show it finds what happened meanwhile). */
  readonly components: readonly Component[];
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  readonly release?: KubernetesRelease;
  /** Also the scheduler and kwok's node (default true): pods run. Without, pods stay Pending. */
  readonly nodes?: boolean;
  readonly apiserverFlags?: readonly string[];
}

const CONTROLLERS = ["job", "cronjob", "garbagecollector", "ttl-after-finished", "serviceaccount", "resourcequota", "podgc"];

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const release = options.release ?? "newest";
  const binaries = kubernetes(release);
  const server = await startRealApiServer({ release, ...(options.apiserverFlags === undefined ? {} : { flags: options.apiserverFlags }) });
  const admin = server.kubeconfig();
  const components: Component[] = [];
  const stop = async () => {
    for (const component of components.reverse()) await component.stop();
    await server.stop();
  };
  try {
    const [managerPort, schedulerPort] = await Promise.all([freePort(), freePort()]);
    components.push(
      startComponent("kube-controller-manager", binaries.controllerManager, [
        `--kubeconfig=${admin}`,
        "--leader-elect=false",
        `--controllers=${CONTROLLERS.join(",")}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${managerPort}`,
        `--service-account-private-key-file=${join(server.dir, "sa.key")}`,
        "--use-service-account-credentials=false",
        // Counted quotas are recomputed every few seconds instead of every five minutes.
        "--resource-quota-sync-period=2s",
        "--v=1",
      ]),
    );
    if (options.nodes !== false) {
      components.push(startComponent("kube-scheduler", binaries.scheduler, [`--kubeconfig=${admin}`, "--leader-elect=false", "--bind-address=127.0.0.1", `--secure-port=${schedulerPort}`, "--v=1"]));
      components.push(await startKwok(server, admin));
    }
    return { server, components, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** kwok with kwok's own node stages and our pod stages, and its node, which it makes Ready. */
async function startKwok(server: RealApiServer, kubeconfig: string): Promise<Component> {
  const nodeStages = kwokNodeStages();
  if (nodeStages === undefined) throw new Error("the kwok module is not downloaded: run test/cluster/install.sh");
  const stages = [join(nodeStages, "fast", "node-initialize.yaml"), join(nodeStages, "heartbeat", "node-heartbeat.yaml"), STAGES];
  const config = join(server.dir, "kwok.yaml");
  writeFileSync(config, stages.map((file) => readFileSync(file, "utf8")).join("\n---\n"));
  const node = {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: NODE, annotations: { "kwok.x-k8s.io/node": "fake" }, labels: { "kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", type: "kwok" } },
    spec: {},
  };
  const created = await server.request("POST", "/api/v1/nodes", node);
  if (created.status !== 201) throw new Error(`node ${NODE}: ${created.status} ${JSON.stringify(created.body).slice(0, 300)}`);
  const kwok = startComponent("kwok", KWOK, [`--kubeconfig=${kubeconfig}`, `--config=${config}`, "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--cidr=10.244.0.0/16", "--node-ip=10.0.1.1"]);
  await waitUntil(
    "kwok's node",
    async () => {
      const answer = await server.request("GET", `/api/v1/nodes/${NODE}`);
      return (answer.body?.status?.conditions as Array<{ type: string; status: string }> | undefined)?.some((condition) => condition.type === "Ready" && condition.status === "True") === true;
    },
    [kwok],
  );
  // The node lifecycle controller's part (not run here: it would judge kwok's heartbeats): the
  // not-ready taint the API server put on the new node goes once the node is Ready.
  const untainted = await server.request("PATCH", `/api/v1/nodes/${NODE}`, { spec: { taints: null } }, { contentType: "application/merge-patch+json" });
  if (untainted.status !== 200) throw new Error(`node ${NODE}: ${untainted.status} ${JSON.stringify(untainted.body).slice(0, 300)}`);
  return kwok;
}
