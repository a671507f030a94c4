// In-process cost per call of the two cheapest paths, measured the same way: an ignored pod event
// (CloudEvent decoded, interpreted, handled, its answer written) and the admission of a pod that
// is not a job (AdmissionReview decoded, admitted, its answer written).
import { decodeAdmissionReview, admissionResponse } from "../handler/adjust/admission.js";
import { createAdmitter } from "../handler/adjust/admit.js";
import { loadConfig } from "../handler/edges/config.js";
import { silentLogger } from "../handler/edges/log.js";
import { decodeHttpRequest } from "../handler/measure/cloudevent.js";
import { createHandler } from "../handler/measure/handle.js";
import { memoryLedger } from "../handler/measure/ledger.js";
import { interpretEvent } from "../handler/measure/pod-event.js";
import { requestSource } from "./events.js";

export async function pipelineCosts(iterations: number): Promise<{ ignoredEventMicros: number; nonJobAdmissionMicros: number }> {
  const config = loadConfig({ POD_NAMESPACES: "batch" }, { kubernetes: false });
  const deliver = async () => ({ ok: true as const, attempts: 1 });
  const handle = createHandler({ criteria: config, ledger: memoryLedger(), deliver, log: silentLogger, sweep: { unavailable: "no" } });
  const admit = createAdmitter({ criteria: config, ranges: config.ranges, budgetMs: 1000, deliver });

  // A pod without an app id, in a watched namespace: not a job, for both paths.
  const next = requestSource("ignored", "binary", "pipeline");
  next();
  const event = next(); // the second template: namespace batch, no JOBID
  const eventBody = Buffer.from(event.body);
  const reviewBody = Buffer.from(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "u", resource: { group: "", version: "v1", resource: "pods" }, operation: "CREATE", namespace: "batch", dryRun: false, object: JSON.parse(event.body) } }));

  const time = async (work: () => Promise<unknown>) => {
    for (let i = 0; i < Math.min(iterations, 5000); i++) await work();
    const before = process.cpuUsage();
    for (let i = 0; i < iterations; i++) await work();
    const used = process.cpuUsage(before);
    return (used.user + used.system) / iterations;
  };
  const ignoredEventMicros = await time(async () => {
    const decoded = decodeHttpRequest(event.headers, eventBody);
    const outcome = await handle(interpretEvent(decoded.events[0] as never));
    return JSON.stringify(outcome);
  });
  const nonJobAdmissionMicros = await time(async () => {
    const request = decodeAdmissionReview(JSON.parse(reviewBody.toString("utf8")));
    const admission = await admit(request);
    return JSON.stringify(admissionResponse(request.uid, admission.patch === undefined ? {} : { patch: admission.patch }));
  });
  return { ignoredEventMicros, nonJobAdmissionMicros };
}
