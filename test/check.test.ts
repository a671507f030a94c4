// The checks of `servo-k8s-multijob check`, as pure functions of literal facts (the real-tier test
// runs them against a real API server): each fault is named, and says what to do.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { accessQuestions, failed, runChecks, type CheckOptions, type ClusterFacts } from "../handler/check/checks.js";
import { renderJson, renderText } from "../handler/check/report.js";

const NOW = Date.parse("2026-12-01T12:00:00Z");
const OPTIONS: CheckOptions = { namespace: "optune-servo", watch: ["batch"], target: "knative", webhook: false, now: NOW };
const ready = (...types: string[]) => ({ found: { spec: {}, status: { conditions: types.map((type) => ({ type, status: "True" })) } } });
const source = (spec: object) => ({ found: { spec, status: { conditions: ["Ready", "SufficientPermissions", "SinkProvided"].map((type) => ({ type, status: "True" })) } } });
const SINK = { ref: { apiVersion: "serving.knative.dev/v1", kind: "Service", name: "servo-k8s-multijob", namespace: "optune-servo" } };
const healthy = (): ClusterFacts => ({
  server: { version: "v1.31.0" },
  apis: ["serving.knative.dev/v1", "sources.knative.dev/v1"],
  access: accessQuestions(OPTIONS).map((question) => ({ ...question, allowed: true })),
  service: ready("Ready"),
  pingSource: ready("Ready"),
  sources: { batch: source({ mode: "Resource", sink: SINK }) },
  tokenSecret: { name: "optune-auth-token", key: "token", keys: ["token"] },
  pods: { batch: [] },
});
const find = (facts: ClusterFacts, name: RegExp, options = OPTIONS) => runChecks(facts, options).flatMap((category) => category.checks).find((check) => name.test(check.name));

describe("check, pure", () => {
  test("a healthy installation: nothing fails", () => {
    assert.equal(failed(runChecks(healthy(), OPTIONS)), false);
    assert.match(renderText(runChecks(healthy(), OPTIONS)), /Status check results are ✔\n$/);
    assert.equal(JSON.parse(renderJson(runChecks(healthy(), OPTIONS))).success, true);
  });

  test("an unreachable API server: one failure, and nothing else is judged", () => {
    const categories = runChecks({ ...healthy(), server: { error: "cannot reach it: ECONNREFUSED" } }, OPTIONS);
    assert.deepEqual(categories.map((category) => category.name), ["kubernetes-api"]);
    assert.equal(categories[0]!.checks[0]!.status, "failed");
  });

  test("Knative not installed: named, with where to get it", () => {
    assert.match(find({ ...healthy(), apis: [] }, /Knative Serving/)?.hint ?? "", /install Knative Serving/);
  });

  test("a source in Reference mode is a warning; a sink elsewhere, or no source, a failure", () => {
    assert.equal(find({ ...healthy(), sources: { batch: source({ sink: SINK }) } }, /whole Pods/)?.status, "warning");
    assert.equal(find({ ...healthy(), sources: { batch: source({ mode: "Resource", sink: { ref: { kind: "Service", name: "other" } } }) } }, /sends to the function/)?.status, "failed");
    assert.equal(find({ ...healthy(), sources: {} }, /job-pods exists/)?.status, "failed");
  });

  test("the token Secret missing, or without the key the function reads", () => {
    assert.match(find({ ...healthy(), tokenSecret: { name: "optune-auth-token", key: "token", keys: undefined } }, /holds the Optune token/)?.hint ?? "", /kubectl -n optune-servo create secret generic optune-auth-token/);
    assert.match(find({ ...healthy(), tokenSecret: { name: "optune-auth-token", key: "token", keys: ["TOKEN"] } }, /holds the Optune token/)?.hint ?? "", /no key token \(only TOKEN\)/);
  });

  test("a permission the API server denies: the exact missing rule", () => {
    const access = accessQuestions(OPTIONS).map((question) => ({ ...question, allowed: question.verb !== "patch" }));
    assert.match(find({ ...healthy(), access }, /may get, list, patch pods in batch/)?.hint ?? "", /verbs \[patch\]/);
  });

  test("a certificate expiring within 30 days is a warning; the caBundle not verifying it, a failure", () => {
    const webhook = (notAfter: number, verifies = true) => ({ configuration: { found: { webhooks: [{ failurePolicy: "Ignore" }] } }, deployment: { found: { spec: { replicas: 2 }, status: { availableReplicas: 2 } } }, certificate: { verifiesWithCaBundle: verifies, dnsNames: ["servo-k8s-multijob-webhook.optune-servo.svc"], notAfter } });
    const options = { ...OPTIONS, webhook: true };
    assert.equal(find({ ...healthy(), webhook: webhook(NOW + 10 * 86_400_000) }, /more days/, options)?.status, "warning");
    assert.equal(find({ ...healthy(), webhook: webhook(NOW + 90 * 86_400_000, false) }, /caBundle/, options)?.status, "failed");
  });

  test("a finished job pod unreported for more than a sweep interval is named; other pods do not count", () => {
    const pod = (name: string, jobId: string | undefined, finishedMinutesAgo: number, claim?: string) => ({
      metadata: { name, namespace: "batch", ...(claim === undefined ? {} : { annotations: { "optune.ai/measurement": JSON.stringify({ state: claim }) } }) },
      spec: { containers: [{ name: "worker", env: jobId === undefined ? [] : [{ name: "JOBID", value: jobId }] }] },
      status: { phase: "Succeeded", containerStatuses: [{ name: "worker", state: { terminated: { finishedAt: new Date(NOW - finishedMinutesAgo * 60_000).toISOString() } } }] },
    });
    const facts = { ...healthy(), pods: { batch: [pod("done", "etl", 30, "sent"), pod("late", "etl", 20), pod("just-now", "etl", 1), pod("not-a-job", undefined, 20)] } };
    const check = find(facts, /finished jobs in batch/);
    assert.equal(check?.name, "finished jobs in batch in the last hour: 1 of 3 reported");
    assert.match(check?.hint ?? "", /unreported for more than a sweep interval: late;/);
  });
});
