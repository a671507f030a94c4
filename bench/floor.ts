// Server A, the floor: what any function must do with a pod event at the least. A bare node:http
// server that reads the body, parses it, reads the first container's state, and answers 204.
import http from "node:http";

const server = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { data?: unknown };
    // Structured mode carries the pod in `data`; binary mode is the pod itself.
    const pod = (request.headers["content-type"] === "application/cloudevents+json" ? parsed.data : parsed) as { status?: { containerStatuses?: Array<{ state?: unknown }> } };
    if (pod?.status?.containerStatuses?.[0]?.state === undefined) response.setHeader("X-State", "none");
    response.writeHead(204).end();
  });
});
server.listen(Number(process.env.PORT ?? "8080"));
