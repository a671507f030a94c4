// `admit --adjust cpu=1.5,mem=512Mi`: Optune's side of the command loop, scripted, for a dry run
// that shows an adjustment. It answers as Optune would: DESCRIBE first, then an ADJUST of the
// component the DESCRIPTION named, then MEASURE. Nothing is sent anywhere.
import { parseCpu, parseMemory } from "../jobs/quantity.js";
import { isRecord } from "../jobs/pod.js";
import type { SettingName } from "./settings.js";

export type SampleSettings = Partial<Readonly<Record<SettingName, number>>>;

/** `cpu=1.5,mem=512Mi` (cpu in cores or millicores, mem as a Kubernetes quantity), or why not. */
export function parseSampleSettings(flag: string): SampleSettings | string {
  const settings: Partial<Record<SettingName, number>> = {};
  for (const part of flag.split(",")) {
    const [name, quantity, extra] = part.split("=");
    if (extra !== undefined || quantity === undefined || quantity === "") return `--adjust takes cpu=CORES,mem=QUANTITY (e.g. cpu=1.5,mem=512Mi), got ${JSON.stringify(part)}`;
    if (name !== "cpu" && name !== "mem") return `--adjust sets cpu and mem only, not ${JSON.stringify(name)}`;
    if (settings[name] !== undefined) return `--adjust sets ${name} twice`;
    const value = name === "cpu" ? parseCpu(quantity) : parseMemory(quantity);
    if (value === undefined || value <= 0) return `--adjust ${name}=${quantity} is not a ${name === "cpu" ? "cpu quantity (1.5, 1500m)" : "memory quantity (512Mi, 1Gi, 536870912)"}`;
    settings[name] = value;
  }
  return settings;
}

/**
 * Answers to the messages of one pod's command loop: WHATS_NEXT → DESCRIBE, → ADJUST (the sample,
 * for the component the DESCRIPTION described), → MEASURE. Each call is one message's answer.
 */
export function sampleOptune(sample: SampleSettings): (message: { event?: unknown; param?: unknown }) => string | undefined {
  let component: string | undefined;
  let asked = 0;
  return (message) => {
    if (message.event === "DESCRIPTION") component = describedComponent(message.param);
    if (message.event !== "WHATS_NEXT") return undefined;
    asked += 1;
    if (asked === 1) return JSON.stringify({ cmd: "DESCRIBE", param: {} });
    if (asked === 2 && component !== undefined) {
      const settings = Object.fromEntries(Object.entries(sample).map(([name, value]) => [name, { value }]));
      return JSON.stringify({ cmd: "ADJUST", param: { state: { application: { components: { [component]: { settings } } } }, control: {} } });
    }
    return JSON.stringify({ cmd: "MEASURE", param: { metrics: ["duration"], control: {} } });
  };
}

function describedComponent(param: unknown): string | undefined {
  const components = isRecord(param) && isRecord(param.application) && isRecord(param.application.components) ? param.application.components : undefined;
  return components === undefined ? undefined : Object.keys(components)[0];
}
