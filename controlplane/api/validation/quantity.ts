// Resource quantities (`100m`, `0.5`, `64Mi`, `1G`, `1e3`), as
// k8s.io/apimachinery/pkg/api/resource parses them. Values are read as
// floating point: good enough to compare requests with limits and to sum
// them for QoS and scheduling, which is all Skiff does with them.

const binary: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 }
const decimal: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 }

export const quantityFormatMsg = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

/** The value of a quantity, or undefined when it does not parse. JSON numbers are quantities too. */
export function parseQuantity(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined
  if (typeof v !== 'string') return undefined
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))([a-zA-Z]*)([-+]?\d*)$/.exec(v)
  if (!m) return undefined
  const [, num, suffix, exp] = m
  const n = Number(num)
  if (suffix === 'e' || suffix === 'E') return exp === '' || exp === '+' || exp === '-' ? undefined : n * 10 ** Number(exp)
  if (exp !== '') return undefined
  // Own keys only: `1constructor` is no quantity (`in` would find Object.prototype's).
  if (Object.hasOwn(binary, suffix)) return n * binary[suffix]
  if (Object.hasOwn(decimal, suffix)) return n * decimal[suffix]
  return undefined
}
