// The load generator, in its own process (pinned to the other core): autocannon against one
// server with one stream. Arguments: a JSON object; prints one JSON line with the results.
import autocannon from "autocannon";
import { requestSource, type Mode, type Stream } from "./events.js";

const options = JSON.parse(process.argv[2] ?? "{}") as { url: string; connections: number; seconds: number; stream: Stream; mode: Mode; prefix: string };
const next = requestSource(options.stream, options.mode, options.prefix);

const result = await autocannon({
  url: options.url,
  connections: options.connections,
  duration: options.seconds,
  requests: [
    {
      method: "POST",
      path: "/",
      setupRequest: (request: Record<string, unknown>) => {
        const { headers, body } = next();
        return { ...request, headers, body };
      },
    },
  ],
});
process.stdout.write(
  `${JSON.stringify({
    requests: result.requests.total,
    perSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  })}\n`,
);
