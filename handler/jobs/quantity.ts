// Kubernetes resource quantities (ADJUST.md section 3), only as far as cpu and memory need them:
// cpu in cores ("1.5", "1500m"), memory in bytes ("536870912", "512Mi", "1G", "1e9").

const CPU = /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m?)$/;
const MEMORY = /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
const BINARY: Readonly<Record<string, number>> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Readonly<Record<string, number>> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** Cores in a cpu quantity, or undefined when it is not one. */
export function parseCpu(quantity: unknown): number | undefined {
  const match = typeof quantity === "string" ? CPU.exec(quantity.trim()) : null;
  if (match === null) return undefined;
  const value = Number(match[1]) / (match[2] === "m" ? 1000 : 1);
  return Number.isFinite(value) ? value : undefined;
}

/** Bytes in a memory quantity, or undefined when it is not one. */
export function parseMemory(quantity: unknown): number | undefined {
  const match = typeof quantity === "string" ? MEMORY.exec(quantity.trim()) : null;
  if (match === null) return undefined;
  const [, mantissa, exponent, suffix] = match;
  const scale = suffix === undefined ? 1 : (BINARY[suffix] ?? DECIMAL[suffix] ?? 1);
  const value = Number(mantissa) * 10 ** Number(exponent ?? 0) * scale;
  return Number.isFinite(value) ? value : undefined;
}

/** Cores as Kubernetes keeps them, to the millicore: "2", "1500m". */
export function formatCpu(cores: number): string {
  const millicores = Math.round(cores * 1000);
  return millicores % 1000 === 0 ? String(millicores / 1000) : `${millicores}m`;
}

/** Bytes as Kubernetes users write them: the largest binary suffix that divides them ("512Mi", "65540Ki"), else bytes. */
export function formatMemory(bytes: number): string {
  const whole = Math.round(bytes);
  if (whole > 0) {
    for (const [suffix, scale] of Object.entries(BINARY).reverse()) if (whole % scale === 0) return `${whole / scale}${suffix}`;
  }
  return String(whole);
}
