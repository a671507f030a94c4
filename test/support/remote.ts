// A remote that misbehaves on purpose, for the tables of remote answers: statuses with any
// headers, connections reset or left hanging, bodies that trickle or never end.
import http from "node:http";
import type { AddressInfo } from "node:net";

export type Behaviour =
  | { readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly body?: string }
  /** Accept the request and never answer. */
  | { readonly hang: true }
  /** Destroy the connection once the request arrived. */
  | { readonly reset: true }
  /** The status line and headers at once, then the body one byte every `everyMs`. */
  | { readonly status: number; readonly trickle: string; readonly everyMs: number }
  /** The status line, then a body that never ends (64 KiB every millisecond). */
  | { readonly status: number; readonly endless: true };

export interface Remote {
  readonly url: string;
  /** Requests seen, in order (the path and the body). */
  readonly seen: Array<{ readonly path: string; readonly body: string; readonly headers: http.IncomingHttpHeaders }>;
  /** Bytes of answer bodies written so far. */
  readonly written: () => number;
  behave: (attempt: number) => Behaviour;
  close(): Promise<void>;
}

export async function startRemote(behave: (attempt: number) => Behaviour): Promise<Remote> {
  const seen: Remote["seen"] = [];
  let written = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      seen.push({ path: request.url ?? "", body: Buffer.concat(chunks).toString(), headers: request.headers });
      const behaviour = remote.behave(seen.length);
      if ("hang" in behaviour) return;
      if ("reset" in behaviour) return void request.socket.destroy();
      if ("trickle" in behaviour) {
        response.writeHead(behaviour.status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(behaviour.trickle) });
        let index = 0;
        const timer = setInterval(() => {
          if (response.destroyed || index >= behaviour.trickle.length) return void (clearInterval(timer), timers.delete(timer), response.end());
          response.write(behaviour.trickle[index++]!);
          written++;
        }, behaviour.everyMs);
        timers.add(timer);
        return;
      }
      if ("endless" in behaviour) {
        response.writeHead(behaviour.status, { "Content-Type": "application/json" });
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        const timer = setInterval(() => {
          if (response.destroyed) return void (clearInterval(timer), timers.delete(timer));
          response.write(chunk);
          written += chunk.length;
        }, 1);
        timers.add(timer);
        return;
      }
      response.writeHead(behaviour.status, { "Content-Type": "application/json", ...behaviour.headers });
      response.end(behaviour.body ?? "{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const remote: Remote = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    written: () => written,
    behave,
    close: () =>
      new Promise((resolve) => {
        for (const timer of timers) clearInterval(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return remote;
}
