// The one function parse-prometheus-text-format exports (the package ships no types).
declare module "parse-prometheus-text-format" {
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
