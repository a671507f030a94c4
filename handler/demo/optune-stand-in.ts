// A local stand-in for Optune: records every request and answers as told (200 by default).
// The demo shows what it got; the tests count exactly what arrived.
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: unknown;
  /** The status this receiver answered with. */
  readonly status: number;
}

export interface Answer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Wait this long before answering (to test timeouts). */
  readonly delayMs?: number;
}

export type Responder = (request: Omit<ReceivedRequest, "status">) => Answer;

export interface Receiver {
  /** Base URL, e.g. http://127.0.0.1:40123 (no trailing slash). */
  readonly url: string;
  /** The OPTUNE_URL template that points here. */
  readonly template: string;
  readonly requests: ReceivedRequest[];
  respond: Responder;
  close(): Promise<void>;
}

export async function startReceiver(respond: Responder = () => ({ status: 200, body: "{}" })): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep the text: a test may want to see what was not JSON
      }
      const seen = { method: request.method ?? "", path: request.url ?? "", headers: request.headers, body };
      const answer = receiver.respond(seen);
      const finish = () => {
        requests.push({ ...seen, status: answer.status });
        response.writeHead(answer.status, { "Content-Type": "application/json", ...answer.headers });
        response.end(answer.body ?? "");
      };
      if (answer.delayMs === undefined) finish();
      else setTimeout(finish, answer.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const receiver: Receiver = {
    url,
    template: `${url}/metrics/{acct}/{app_id}/servo`,
    requests,
    respond,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return receiver;
}
