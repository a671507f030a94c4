// etcd 3.6 (built by install.sh from go.etcd.io/etcd/server/v3) on free loopback ports, its data
// in the caller's folder.
import { join } from "node:path";
import { freePort } from "../../handler/demo/cadvisor-stand-in.js";
import { ETCD } from "./components.js";
import { startComponent, waitUntil, type Component } from "./process.js";

export interface RunningEtcd {
  readonly url: string;
  readonly component: Component;
}

export async function startEtcd(dir: string): Promise<RunningEtcd> {
  const [client, peer] = await Promise.all([freePort(), freePort()]);
  const url = `http://127.0.0.1:${client}`;
  const component = startComponent("etcd", ETCD, [
    "--name", "test",
    "--data-dir", join(dir, "etcd"),
    "--listen-client-urls", url,
    "--advertise-client-urls", url,
    "--listen-peer-urls", `http://127.0.0.1:${peer}`,
    "--initial-advertise-peer-urls", `http://127.0.0.1:${peer}`,
    "--initial-cluster", `test=http://127.0.0.1:${peer}`,
    "--log-level", "error",
    // No fsync per write: the data lives as long as the test, and a loaded machine stays fast.
    "--unsafe-no-fsync",
  ]);
  await waitUntil("etcd", async () => (await fetch(`${url}/health`)).ok, [component], 30_000);
  return { url, component };
}
