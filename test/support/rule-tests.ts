// The promtool unit tests of the alerts (example/monitoring/rules.test.yml, written by `npm run
// examples`): for each alert when it fires, and when it must stay quiet: the function scaled to
// zero between pings, OpenFaaS (memory mode: no sweeps), only the webhook running.
import { alertRules } from "../../handler/deploy/monitoring.js";

const P = "servo_k8s_multijob_";
const FN = { namespace: "optune-servo", job: "optune-servo/servo-k8s-multijob" };
const HOOK = { namespace: "optune-servo", job: "optune-servo/servo-k8s-multijob-webhook" };
const labels = (extra: Record<string, string>) => `{${Object.entries(extra).map(([name, value]) => `${name}="${value}"`).join(",")}}`;

interface Case {
  readonly name: string;
  readonly series: ReadonlyArray<readonly [string, string]>;
  /** At `eval` minutes, `alert` fires with these labels (one set per alert), or stays quiet ([]). */
  readonly expect: ReadonlyArray<{ readonly eval: number; readonly alert: string; readonly fires: ReadonlyArray<Record<string, string>> }>;
}

const CASES: readonly Case[] = [
  {
    name: "sweeps stop: NoSuccessfulSweep stays quiet for 15 minutes, then fires",
    series: [[`${P}last_successful_sweep_timestamp_seconds${labels(FN)}`, "0+60x10"]],
    expect: [
      { eval: 20, alert: "NoSuccessfulSweep", fires: [] },
      { eval: 40, alert: "NoSuccessfulSweep", fires: [FN] },
    ],
  },
  {
    name: "scaled to zero between pings: each ping wakes an instance that sweeps; quiet",
    series: [[`${P}last_successful_sweep_timestamp_seconds${labels({ ...FN, pod: "a" })}`, Array.from({ length: 13 }, (_, step) => `${step * 300} _ _ _ _`).join(" ")]],
    expect: [
      { eval: 34, alert: "NoSuccessfulSweep", fires: [] },
      { eval: 58, alert: "NoSuccessfulSweep", fires: [] },
    ],
  },
  {
    name: "OpenFaaS (memory mode: no sweep gauge at all) and only the webhook running: quiet",
    series: [
      [`${P}messages_total${labels({ namespace: "openfaas-fn", job: "openfaas-fn/servo-k8s-multijob", message: "measurement", result: "sent" })}`, "0+1x60"],
      [`${P}admissions_total${labels({ ...HOOK, result: "adjusted" })}`, "0+2x60"],
    ],
    expect: [
      { eval: 59, alert: "NoSuccessfulSweep", fires: [] },
      { eval: 59, alert: "OptuneDeliveriesFailing", fires: [] },
      { eval: 59, alert: "WebhookOptuneErrors", fires: [] },
      { eval: 59, alert: "EventsAnswered5xx", fires: [] },
    ],
  },
  {
    name: "Optune fails most messages: OptuneDeliveriesFailing",
    series: [
      [`${P}messages_total${labels({ ...FN, message: "measurement", result: "failed" })}`, "0+3x40"],
      [`${P}messages_total${labels({ ...FN, message: "measurement", result: "sent" })}`, "0+1x40"],
    ],
    expect: [
      { eval: 5, alert: "OptuneDeliveriesFailing", fires: [] },
      { eval: 35, alert: "OptuneDeliveriesFailing", fires: [FN] },
    ],
  },
  {
    name: "events answered 503: EventsAnswered5xx",
    series: [[`${P}events_total${labels({ ...FN, type: "resource", outcome: "failed" })}`, "0+5x40"]],
    expect: [{ eval: 35, alert: "EventsAnswered5xx", fires: [FN] }],
  },
  {
    name: "claims refused: ClaimsRefused",
    series: [[`${P}claims_total${labels({ ...FN, result: "refused" })}`, "0+1x20"]],
    expect: [{ eval: 15, alert: "ClaimsRefused", fires: [FN] }],
  },
  {
    name: "the webhook admits job pods with optune_error: WebhookOptuneErrors",
    series: [
      [`${P}admissions_total${labels({ ...HOOK, result: "optune_error" })}`, "0+2x40"],
      [`${P}admissions_total${labels({ ...HOOK, result: "adjusted" })}`, "0+1x40"],
    ],
    expect: [{ eval: 35, alert: "WebhookOptuneErrors", fires: [HOOK] }],
  },
  {
    name: "jobs finish (kube-state-metrics) but no event arrives: NoEventsWhileJobsFinish; quiet once events flow",
    series: [
      [`kube_job_status_completion_time${labels({ namespace: "default", job_name: "resize-images" })}`, "60x90"],
    ],
    expect: [
      { eval: 20, alert: "NoEventsWhileJobsFinish", fires: [] },
      { eval: 45, alert: "NoEventsWhileJobsFinish", fires: [{}] },
    ],
  },
  {
    name: "jobs finish and events arrive: quiet",
    series: [
      [`kube_job_status_completion_time${labels({ namespace: "default", job_name: "resize-images" })}`, "60x90"],
      [`${P}events_total${labels({ ...FN, type: "resource", outcome: "sent" })}`, "0+1x90"],
    ],
    expect: [{ eval: 45, alert: "NoEventsWhileJobsFinish", fires: [] }],
  },
];

/** The promtool test file, with each alert's annotations as Prometheus expands them. */
export function ruleTests(watch: readonly string[]): object {
  const rules = new Map(alertRules({ watch }).map((rule) => [rule.alert!, rule]));
  const expanded = (text: string, fired: Record<string, string>) => text.replaceAll("{{ $labels.namespace }}", fired.namespace ?? "");
  return {
    rule_files: ["rules.yml"],
    evaluation_interval: "1m",
    tests: CASES.map((test) => ({
      name: test.name,
      interval: "1m",
      input_series: test.series.map(([series, values]) => ({ series, values })),
      alert_rule_test: test.expect.map(({ eval: minutes, alert, fires }) => {
        const rule = rules.get(alert)!;
        return {
          eval_time: `${minutes}m`,
          alertname: alert,
          exp_alerts: fires.map((fired) => ({
            exp_labels: { ...rule.labels, ...fired },
            exp_annotations: Object.fromEntries(Object.entries(rule.annotations ?? {}).map(([key, value]) => [key, expanded(value, fired)])),
          })),
        };
      }),
    })),
  };
}
