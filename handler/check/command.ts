// `check`, the command: the flags of `manifests` read as `manifests` reads them, facts gathered,
// checks run, results printed; exit 1 when a check failed.
import { loadConfig } from "../edges/config.js";
import { findKubeconfig } from "../edges/kubernetes.js";
import { silentLogger } from "../edges/log.js";
import { connectOptune } from "../edges/optune.js";
import { GLOBAL_APP, helloMessage } from "../measure/lifecycle.js";
import { optionsFrom } from "../deploy/print.js";
import { failed, runChecks, type CheckOptions, type ClusterFacts } from "./checks.js";
import { CHECK_DEADLINE_MS, checkLimits, connectApi, type Limits } from "./connect.js";
import { gatherFacts, probeOptune, unreachable } from "./gather.js";
import { renderJson, renderText } from "./report.js";

type Values = Record<string, string | boolean | string[] | undefined>;

/** A HELLO to the function's OPTUNE_URL, with OPTUNE_ACCOUNT and OPTUNE_AUTH_TOKEN from this environment. */
async function sayHello(url: string): Promise<true | string> {
  let config;
  try {
    config = loadConfig({ ...process.env, OPTUNE_URL: url }, { kubernetes: false });
  } catch (error) {
    return (error as Error).message;
  }
  if (config.account === undefined && url.includes("{acct}")) return "OPTUNE_ACCOUNT is not set in this environment";
  const optune = connectOptune(config, { print: () => {}, log: silentLogger });
  try {
    const result = await optune.deliverWithin(10_000)({ appId: GLOBAL_APP, body: helloMessage(config.account) });
    return result.ok ? true : result.error;
  } finally {
    optune.close();
  }
}

export async function runCheck(values: Values, io: { readonly out: (text: string) => void; readonly usageError: (message: string) => number; readonly version?: string }): Promise<number> {
  const { output, pre, optune, ...installFlags } = values;
  if (output !== undefined && output !== "text" && output !== "json") return io.usageError(`-o must be json, got ${JSON.stringify(output)}`);
  const install = optionsFrom(installFlags, io.version ?? "unknown", false);
  if (typeof install === "string") return io.usageError(install);
  const options: CheckOptions = { install, now: Date.now(), ...(pre === true ? { pre: true } : {}), ...(io.version === undefined ? {} : { cliVersion: io.version }) };
  const source = findKubeconfig(process.env);
  if (source === undefined) return io.usageError("no Kubernetes configuration: set KUBECONFIG or create ~/.kube/config");
  const limits = checkLimits();
  const probe = (url: string) => probeOptune(url, limits, optune === true ? sayHello : undefined);
  const configuredUrl = process.env.OPTUNE_URL === undefined || process.env.OPTUNE_URL === "" ? undefined : process.env.OPTUNE_URL;
  const facts = await connectApi(source, limits).then(
    (api) => withinDeadline(gatherFacts(api, options, probe, configuredUrl), limits),
    (error: Error) => unreachable(`cannot use the kubeconfig: ${error.message}`),
  );
  const categories = runChecks(facts, options);
  io.out(output === "json" ? renderJson(categories) : renderText(categories));
  return failed(categories) ? 1 : 0;
}

/** The facts, or (past the check's deadline and a grace for what is not an API call: DNS, the HELLO) one line that says so. */
async function withinDeadline(facts: Promise<ClusterFacts>, limits: Limits): Promise<ClusterFacts> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<ClusterFacts>((resolve) => {
    timer = setTimeout(() => resolve(unreachable(`the check did not finish within ${CHECK_DEADLINE_MS / 1000} s`)), limits.deadline - Date.now() + 15_000);
  });
  try {
    return await Promise.race([facts, late]);
  } finally {
    clearTimeout(timer);
  }
}
