// The Optune stand-in for the benchmark: answers 200 at once and only counts (no memory kept).
import http from "node:http";

let received = 0;
const server = http.createServer((request, response) => {
  request.resume();
  request.on("end", () => {
    received++;
    response.writeHead(200, { "Content-Type": "application/json", "Content-Length": "2" }).end("{}");
  });
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
process.on("SIGUSR2", () => process.stdout.write(`${JSON.stringify({ received })}\n`));
