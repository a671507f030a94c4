// `servo-k8s-multijob dead-letters`: the Broker's dead-letter sink, from the same image (so it has
// a tag, the function's version). An event lands here after the Broker's retries to the function
// ran out. It is logged as one line that names the event and the pod, never the pod itself: a pod
// carries its env values, which can be secrets, and the event_display sample would print them.
// A batch is one line that counts its letters: a request never writes more than one line.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Config } from "../edges/config.js";
import { createEdge, drain, guardConnections, reply, SERVER_TIMEOUTS } from "../edges/http-edge.js";
import { createLogger, type LogFields } from "../edges/log.js";
import { clip, isRecord, text } from "../jobs/pod.js";
import { decodeHttpRequest, MalformedEvent, type CloudEvent, type DecodedRequest } from "./cloudevent.js";

/** What is logged of a dead letter: its attributes, the pod it is about, and Knative's error extensions (clipped). */
export function deadLetterFields(event: CloudEvent): LogFields {
  const data = isRecord(event.data) ? event.data : {};
  const metadata = isRecord(data.metadata) ? data.metadata : data;
  const namespace = text(metadata.namespace);
  const name = text(metadata.name) ?? text(metadata.generateName);
  const fields: Record<string, unknown> = {
    id: clip(event.id, 128),
    type: clip(event.type, 128),
    source: clip(event.source, 256),
    ...(name === undefined ? {} : { pod: `${clip(namespace ?? "?")}/${clip(name)}` }),
  };
  // Knative's dead-letter extensions: the last HTTP status and the destination it came from.
  for (const [extension, key] of [["knativeerrorcode", "errorCode"], ["knativeerrordest", "errorDest"]] as const) {
    const value = event[extension];
    if (typeof value === "string" || typeof value === "number") fields[key] = clip(String(value), 256);
  }
  return fields;
}

/** The one log record of a request's dead letters: one letter as itself, a batch counted with its first letter named. */
export function deadLetterRecord({ events, batch }: DecodedRequest): { readonly msg: string; readonly fields: LogFields } {
  const letters = events.filter((event): event is CloudEvent => !(event instanceof MalformedEvent));
  const problem = events.find((event): event is MalformedEvent => event instanceof MalformedEvent);
  if (!batch && letters[0] !== undefined) return { msg: "dead letter", fields: deadLetterFields(letters[0]) };
  if (!batch) return { msg: NOT_CLOUDEVENT, fields: { error: clip(problem?.message ?? "", 256) } };
  return {
    msg: "dead letters (a batch)",
    fields: {
      letters: events.length,
      notCloudEvents: events.length - letters.length,
      ...(letters[0] === undefined ? {} : { first: deadLetterFields(letters[0]) }),
      ...(problem === undefined ? {} : { firstProblem: clip(problem.message, 256) }),
    },
  };
}

const NOT_CLOUDEVENT = "dead letter that is not a CloudEvent";

export async function startDeadLetters(config: Config): Promise<{ stop(reason: string): Promise<void> }> {
  const log = createLogger(config.logLevel);
  const edge = createEdge({
    log,
    path: "/",
    hint: "POST CloudEvents to /",
    async post(request, response, body) {
      try {
        const { msg, fields } = deadLetterRecord(decodeHttpRequest(request.headers, body));
        log.warn(msg, fields);
        reply(response, 202, { outcome: "logged" });
      } catch (error) {
        if (!(error instanceof Error)) throw error;
        log.warn(NOT_CLOUDEVENT, { error: clip(error.message, 256) });
        // Accepted all the same: a dead-letter sink that refuses leaves the Broker retrying forever.
        reply(response, 202, { outcome: "logged" });
      }
    },
  });
  const server = http.createServer(SERVER_TIMEOUTS, edge.listener);
  guardConnections(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, () => resolve());
  });
  log.info("dead-letter sink listening", { port: (server.address() as AddressInfo).port });
  return {
    async stop(reason) {
      log.info("stopping", { reason, withinMs: config.shutdownTimeoutMs });
      // What is in flight gets the grace period less a second; then every connection is closed, a slow sender's too.
      const finish = await drain(server, edge.idle(), edge.idle, config.shutdownTimeoutMs - 1000, () => log.warn("shutdown grace period over: closing the connections still open"));
      await finish();
      log.info("stopped", { reason });
    },
  };
}
