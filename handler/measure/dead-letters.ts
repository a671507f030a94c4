// `servo-k8s-multijob dead-letters`: the Broker's dead-letter sink, from the same image (so it has
// a tag, the function's version). An event lands here after the Broker's retries to the function
// ran out. It is logged as one line that names the event and the pod, never the pod itself: a pod
// carries its env values, which can be secrets, and the event_display sample would print them.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Config } from "../edges/config.js";
import { createEdge, guardConnections, reply, SERVER_TIMEOUTS } from "../edges/http-edge.js";
import { createLogger, type LogFields } from "../edges/log.js";
import { clip, isRecord, text } from "../jobs/pod.js";
import { decodeHttpRequest, MalformedEvent, type CloudEvent } from "./cloudevent.js";

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

export async function startDeadLetters(config: Config): Promise<{ stop(reason: string): Promise<void> }> {
  const log = createLogger(config.logLevel);
  const edge = createEdge({
    log,
    path: "/",
    hint: "POST CloudEvents to /",
    async post(request, response, body) {
      try {
        for (const event of decodeHttpRequest(request.headers, body).events) {
          if (event instanceof MalformedEvent) log.warn("dead letter that is not a CloudEvent", { error: clip(event.message, 256) });
          else log.warn("dead letter", deadLetterFields(event));
        }
        reply(response, 202, { outcome: "logged" });
      } catch (error) {
        if (!(error instanceof Error)) throw error;
        log.warn("dead letter that is not a CloudEvent", { error: clip(error.message, 256) });
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
      log.info("stopping", { reason });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
