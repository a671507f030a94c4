// The sink the real adapter posts to: a round-robin proxy over the function's replicas, as a
// Knative Service spreads requests over its pods. It forwards each request whole and answers what
// the replica answered (so the adapter's retry rules meet the function's real answers), a 502 when
// the replica cannot be reached (as the activator would), and records what it forwarded.
import http from "node:http";

export interface Delivery {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
  readonly status: number;
  readonly replica: number;
  readonly at: number;
}

export interface RoundRobin {
  readonly url: string;
  readonly deliveries: Delivery[];
  /** Replaces the replica URLs (e.g. after one was restarted); undefined entries are down. */
  setReplicas(urls: ReadonlyArray<string | undefined>): void;
  /** Resolves when a delivery matches (e.g. a canary pod's event), or rejects after `ms`. */
  waitFor(match: (delivery: Delivery) => boolean, ms?: number): Promise<Delivery>;
  close(): Promise<void>;
}

export async function startRoundRobin(replicas: ReadonlyArray<string | undefined>): Promise<RoundRobin> {
  let targets = [...replicas];
  let next = 0;
  const deliveries: Delivery[] = [];
  const waiting: Array<{ match: (delivery: Delivery) => boolean; resolve: (delivery: Delivery) => void }> = [];
  const record = (delivery: Delivery) => {
    deliveries.push(delivery);
    for (const waiter of [...waiting]) {
      if (waiter.match(delivery)) {
        waiting.splice(waiting.indexOf(waiter), 1);
        waiter.resolve(delivery);
      }
    }
  };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      const replica = next++ % Math.max(targets.length, 1);
      const target = targets[replica];
      const answer = (status: number, headers: http.OutgoingHttpHeaders, text: Buffer | string) => {
        record({ headers: request.headers, body: body.toString("utf8"), status, replica, at: Date.now() });
        response.writeHead(status, headers).end(text);
      };
      if (target === undefined) return answer(502, {}, "no replica");
      const forwarded = http.request(new URL(request.url ?? "/", target), { method: request.method, headers: { ...request.headers, host: new URL(target).host } }, (reply) => {
        const parts: Buffer[] = [];
        reply.on("data", (chunk: Buffer) => parts.push(chunk));
        reply.on("end", () => answer(reply.statusCode ?? 502, { ...reply.headers }, Buffer.concat(parts)));
        reply.on("error", () => answer(502, {}, "replica broke off"));
      });
      forwarded.on("error", () => answer(502, {}, "replica unreachable"));
      forwarded.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}/`,
    deliveries,
    setReplicas(urls) {
      targets = [...urls];
    },
    waitFor(match, ms = 60_000) {
      const seen = deliveries.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const entry = { match, resolve: (delivery: Delivery) => (clearTimeout(timer), resolve(delivery)) };
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(entry), 1);
          reject(new Error(`no matching delivery within ${ms / 1000} s (${deliveries.length} seen)`));
        }, ms);
        waiting.push(entry);
      });
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
