// Monitoring as code: the alert and recording rules (a Prometheus rules file, or a PrometheusRule
// for prometheus-operator: `manifests --prometheus-rules`) and the Grafana dashboard, all from the
// metrics the servers export. Each alert has a summary, a description that says what to do, and a
// runbook_url to its section of the Runbook in docs/operations.md. example/monitoring/ holds the generated files; promtool lints and
// unit-tests them in CI.

/** What the rules depend on: the namespaces the function watches. */
export interface RuleOptions {
  readonly watch: readonly string[];
}

const P = "servo_k8s_multijob_";

export interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** What the dashboard shows: each panel's queries are recording rules or plain expressions over our metrics. */
export const RECORDING_RULES: readonly Rule[] = [
  { record: "servo_k8s_multijob:events:rate5m", expr: `sum by (namespace, job, type, outcome) (rate(${P}events_total[5m]))` },
  { record: "servo_k8s_multijob:messages:rate5m", expr: `sum by (namespace, job, message, result) (rate(${P}messages_total[5m]))` },
  { record: "servo_k8s_multijob:optune_request_duration_seconds:p50_5m", expr: `histogram_quantile(0.5, sum by (namespace, job, le) (rate(${P}optune_request_duration_seconds_bucket[5m])))` },
  { record: "servo_k8s_multijob:optune_request_duration_seconds:p99_5m", expr: `histogram_quantile(0.99, sum by (namespace, job, le) (rate(${P}optune_request_duration_seconds_bucket[5m])))` },
  { record: "servo_k8s_multijob:claims:rate5m", expr: `sum by (namespace, job, result) (rate(${P}claims_total[5m]))` },
  { record: "servo_k8s_multijob:admissions:rate5m", expr: `sum by (namespace, job, result) (rate(${P}admissions_total[5m]))` },
  { record: "servo_k8s_multijob:last_successful_sweep:age_seconds", expr: `time() - max by (namespace, job) (max_over_time(${P}last_successful_sweep_timestamp_seconds[1h]))` },
];

/**
 * Where an alert's runbook is: its section under "Runbook" in the README (GitHub's anchor for a
 * heading is its text in lower case). Relative to the repository, which has no published home yet:
 * prefix it with where you keep a copy (test/manifests.test.ts checks every anchor exists).
 */
export function runbookUrl(alert: string): string {
  return `docs/operations.md#${alert.toLowerCase()}`;
}

/** The alerts. `watched` scopes the kube-state-metrics one to the namespaces the function watches. */
export function alertRules(options: RuleOptions): Rule[] {
  const alert = (name: string, expr: string, duration: string, severity: "warning" | "critical", summary: string, description: string): Rule => ({
    alert: name,
    expr,
    for: duration,
    labels: { severity },
    annotations: { summary, description, runbook_url: runbookUrl(name) },
  });
  const watched = options.watch.join("|"); // namespace names hold no regex characters
  return [
    alert(
      "OptuneDeliveriesFailing",
      `sum by (namespace, job) (increase(${P}messages_total{result="failed"}[15m])) / clamp_min(sum by (namespace, job) (increase(${P}messages_total{result=~"sent|failed"}[15m])), 1) > 0.5`,
      "10m",
      "critical",
      "Most messages to Optune fail",
      "More than half of the messages to Optune failed in the last 15 minutes in {{ $labels.namespace }}. Look at the function's log (\"optune answered an error\", \"cannot reach Optune\"): a wrong OPTUNE_URL or OPTUNE_ACCOUNT, an expired token, or Optune down. Events are retried; with a Broker for about 17 minutes.",
    ),
    alert(
      "EventsAnswered5xx",
      `sum by (namespace, job) (increase(${P}events_total{outcome=~"failed|deferred"}[15m])) > 10`,
      "15m",
      "warning",
      "The function keeps answering events 503",
      "Events are answered 503 (deferred or failed) in {{ $labels.namespace }}: Optune or the Kubernetes API is failing or slow, or OPTUNE_MAX_INFLIGHT is reached. The sources retry; see the function's log for which.",
    ),
    alert(
      "NoSuccessfulSweep",
      `time() - max by (namespace, job) (max_over_time(${P}last_successful_sweep_timestamp_seconds[1h])) > 900`,
      "5m",
      "warning",
      "No successful sweep for 15 minutes",
      "No instance of the function in {{ $labels.namespace }} finished a sweep for 15 minutes, although it sweeps (claims in the pods). Jobs whose events were lost are not reported. Is the PingSource servo-sweep Ready, and may the function's ServiceAccount list pods? Run `servo-k8s-multijob check`.",
    ),
    alert(
      "ClaimsRefused",
      `sum by (namespace, job) (increase(${P}claims_total{result="refused"}[15m])) > 0`,
      "5m",
      "warning",
      "The Kubernetes API refuses the function's claims (403)",
      "The function may not patch pods in a watched namespace, so it falls back to this instance's memory and replicas may report a job twice. Apply the Roles that `servo-k8s-multijob manifests` writes; `servo-k8s-multijob check` prints the missing rule.",
    ),
    alert(
      "WebhookOptuneErrors",
      `sum by (namespace, job) (increase(${P}admissions_total{result="optune_error"}[15m])) / clamp_min(sum by (namespace, job) (increase(${P}admissions_total{result!="skipped"}[15m])), 1) > 0.2`,
      "15m",
      "warning",
      "The webhook admits job pods untuned: Optune fails it",
      "More than a fifth of the job pods in the last 15 minutes were admitted unchanged because Optune was down, slow (OPTUNE_ADJUST_BUDGET) or answered garbage. Pods are never blocked; look at the webhook's log (\"pod admitted\", result optune-error).",
    ),
    alert(
      "NoEventsWhileJobsFinish",
      `count(time() - kube_job_status_completion_time{namespace=~"${watched}"} < 3600) > 0 unless on () sum(increase(${P}events_total{type="resource"}[1h])) > 0`,
      "30m",
      "warning",
      "Jobs finish, but the function receives no events",
      "Jobs completed in the watched namespaces in the last hour (kube-state-metrics), but no pod event reached the function: is each ApiServerSource job-pods Ready, and does its sink resolve to the function? Run `servo-k8s-multijob check`. Needs kube-state-metrics.",
    ),
  ];
}

/** The rules file Prometheus loads (rule_files), or promtool checks. */
export function rulesFile(options: RuleOptions): object {
  return { groups: [{ name: "servo-k8s-multijob.rules", interval: "30s", rules: RECORDING_RULES }, { name: "servo-k8s-multijob.alerts", rules: alertRules(options) }] };
}


/** Every query the dashboard runs, by panel title (the tests run each against a real Prometheus). */
export const DASHBOARD_PANELS: ReadonlyArray<{ readonly title: string; readonly unit: string; readonly queries: readonly string[] }> = [
  { title: "Events by outcome", unit: "reqps", queries: ['sum by (outcome) (servo_k8s_multijob:events:rate5m{namespace=~"$namespace", job=~"$job"})'] },
  { title: "MEASUREMENTs sent and failed", unit: "reqps", queries: ['sum by (result) (servo_k8s_multijob:messages:rate5m{namespace=~"$namespace", job=~"$job", message="measurement"})'] },
  { title: "Optune latency", unit: "s", queries: ['max(servo_k8s_multijob:optune_request_duration_seconds:p50_5m{namespace=~"$namespace", job=~"$job"})', 'max(servo_k8s_multijob:optune_request_duration_seconds:p99_5m{namespace=~"$namespace", job=~"$job"})'] },
  { title: "Claims by result", unit: "reqps", queries: ['sum by (result) (servo_k8s_multijob:claims:rate5m{namespace=~"$namespace", job=~"$job"})'] },
  { title: "Age of the last successful sweep", unit: "s", queries: ['max(servo_k8s_multijob:last_successful_sweep:age_seconds{namespace=~"$namespace", job=~"$job"})'] },
  { title: "Admissions by result", unit: "reqps", queries: ['sum by (result) (servo_k8s_multijob:admissions:rate5m{namespace=~"$namespace", job=~"$job"})'] },
  { title: "Job run time", unit: "s", queries: [`histogram_quantile(0.5, sum by (le) (rate(${P}job_run_seconds_bucket{namespace=~"$namespace", job=~"$job"}[1h])))`] },
  { title: "Process CPU per instance", unit: "percentunit", queries: ['sum by (pod) (rate(process_cpu_seconds_total{namespace=~"$namespace", job=~"$job"}[5m]))'] },
  { title: "Process memory per instance", unit: "bytes", queries: ['sum by (pod) (process_resident_memory_bytes{namespace=~"$namespace", job=~"$job"})'] },
];

/** A Grafana dashboard (schema 39) with `namespace` and `job` variables, as kubernetes-mixin has them. */
export function dashboard(): object {
  const variable = (name: string, query: string) => ({ name, label: name, type: "query", datasource: { type: "prometheus", uid: "${datasource}" }, query: { query, refId: name }, refresh: 2, includeAll: true, multi: true, current: {} });
  return {
    title: "servo-k8s-multijob",
    uid: "servo-k8s-multijob",
    tags: ["optune", "knative"],
    schemaVersion: 39,
    time: { from: "now-6h", to: "now" },
    templating: {
      list: [
        { name: "datasource", label: "Data source", type: "datasource", query: "prometheus", current: {} },
        variable("namespace", `label_values(${P}messages_total, namespace)`),
        variable("job", `label_values(${P}messages_total{namespace=~"$namespace"}, job)`),
      ],
    },
    panels: DASHBOARD_PANELS.map((panel, index) => ({
      id: index + 1,
      type: "timeseries",
      title: panel.title,
      datasource: { type: "prometheus", uid: "${datasource}" },
      gridPos: { h: 8, w: 12, x: (index % 2) * 12, y: Math.floor(index / 2) * 8 },
      fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
      targets: panel.queries.map((expr, query) => ({ expr, refId: String.fromCharCode(65 + query), legendFormat: "__auto" })),
    })),
  };
}
