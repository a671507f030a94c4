// `check`, the command: flags checked as `manifests` checks them, facts gathered, checks run,
// results printed; exit 1 when a check failed.
import { loadConfig } from "../edges/config.js";
import { findKubeconfig } from "../edges/kubernetes.js";
import { silentLogger } from "../edges/log.js";
import { connectOptune } from "../edges/optune.js";
import { GLOBAL_APP, helloMessage } from "../measure/lifecycle.js";
import { DEFAULT_OPTIONS, optionsProblem, type Target } from "../deploy/manifests.js";
import { unprintableFlag } from "../edges/printable.js";
import { failed, runChecks, type CheckOptions } from "./checks.js";
import { gatherFacts } from "./gather.js";
import { renderJson, renderText } from "./report.js";

type Values = Record<string, string | boolean | string[] | undefined>;

/** A HELLO to the function's OPTUNE_URL, with OPTUNE_ACCOUNT and OPTUNE_AUTH_TOKEN from this environment. */
async function sayHello(url: string): Promise<true | string> {
  const config = loadConfig({ ...process.env, OPTUNE_URL: url }, { kubernetes: false });
  if (config.account === undefined && url.includes("{acct}")) return "OPTUNE_ACCOUNT is not set in this environment";
  const optune = connectOptune(config, { print: () => {}, log: silentLogger });
  try {
    const result = await optune.deliverWithin(10_000)({ appId: GLOBAL_APP, body: helloMessage(config.account) });
    return result.ok ? true : result.error;
  } finally {
    optune.close();
  }
}

export async function runCheck(values: Values, io: { readonly out: (text: string) => void; readonly usageError: (message: string) => number }): Promise<number> {
  const unprintable = unprintableFlag(values);
  if (unprintable !== undefined) return io.usageError(unprintable);
  const output = typeof values.output === "string" ? values.output : "text";
  if (output !== "text" && output !== "json") return io.usageError(`-o must be json, got ${JSON.stringify(output)}`);
  const target = typeof values.target === "string" ? values.target : DEFAULT_OPTIONS.target;
  if (target !== "knative" && target !== "openfaas") return io.usageError(`--target must be knative or openfaas, got ${JSON.stringify(target)}`);
  const options: CheckOptions = {
    namespace: typeof values.namespace === "string" ? values.namespace : DEFAULT_OPTIONS.namespace,
    watch: typeof values.watch === "string" ? values.watch.split(",").map((namespace) => namespace.trim()) : DEFAULT_OPTIONS.watch,
    target: target as Target,
    webhook: values.webhook === true,
    now: Date.now(),
  };
  const problem = optionsProblem({ ...DEFAULT_OPTIONS, namespace: options.namespace, watch: options.watch, target: options.target, webhook: options.webhook });
  if (problem !== undefined) return io.usageError(problem);
  const source = findKubeconfig(process.env);
  if (source === undefined) return io.usageError("no Kubernetes configuration: set KUBECONFIG or create ~/.kube/config");
  const categories = runChecks(await gatherFacts(source, options, values.optune === true ? sayHello : undefined), options);
  io.out(output === "json" ? renderJson(categories) : renderText(categories));
  return failed(categories) ? 1 : 0;
}
