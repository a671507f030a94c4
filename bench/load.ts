// The load generator, in its own process (pinned to the other core): autocannon against one
// server with one stream. Arguments: a JSON object; prints one JSON line with the results.
// Latency percentiles come from every 2xx response's own time in microseconds (autocannon's
// histogram keeps whole milliseconds, too coarse for a ratio when the floor answers in 0.3 ms).
import autocannon from "autocannon";
import { requestSource, type Mode, type Stream } from "./events.js";

const options = JSON.parse(process.argv[2] ?? "{}") as { url: string; path?: string; connections: number; seconds: number; stream: Stream; mode: Mode; prefix: string };
const next = requestSource(options.stream, options.mode, options.prefix);
const micros: number[] = [];

const result = await new Promise<{ requests: { total: number; average: number }; non2xx: number; errors: number; timeouts: number }>((resolve, reject) => {
  const instance = autocannon(
    {
      url: options.url,
      connections: options.connections,
      duration: options.seconds,
      requests: [
        {
          method: "POST",
          path: options.path ?? "/",
          setupRequest: (request: Record<string, unknown>) => {
            const { headers, body } = next();
            return { ...request, headers, body };
          },
        },
      ],
    },
    (error, done) => (error ? reject(error) : resolve(done)),
  );
  instance.on("response", (_client: unknown, status: number, _bytes: number, milliseconds: number) => {
    if (status >= 200 && status < 300) micros.push(milliseconds * 1000);
  });
});
micros.sort((a, b) => a - b);
const percentile = (p: number) => Math.round(micros[Math.min(micros.length - 1, Math.floor((p / 100) * micros.length))] ?? 0);
process.stdout.write(
  `${JSON.stringify({
    requests: result.requests.total,
    perSecond: result.requests.average,
    p50: percentile(50),
    p99: percentile(99),
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  })}\n`,
);
