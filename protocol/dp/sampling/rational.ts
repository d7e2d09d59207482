/** Exact rationals for the samplers: every finite double is a dyadic rational n / 2^k. */

/** A non-negative rational num/den with bigint parts, den > 0. */
export interface Rational {
  readonly num: bigint
  readonly den: bigint
}

/** The exact value of a finite double `x` >= 0 as num / 2^k (lowest terms). */
export function rationalFromNumber(x: number, name = 'value'): Rational {
  if (typeof x !== 'number') throw new TypeError(`${name} must be a number`)
  if (!Number.isFinite(x) || x < 0) throw new RangeError(`${name} must be finite and >= 0, got ${x}`)
  if (x === 0) return { num: 0n, den: 1n }
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat64(0, x)
  const hi = view.getUint32(0)
  const lo = view.getUint32(4)
  const exponentBits = (hi >>> 20) & 0x7ff
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo)
  let exponent: number
  if (exponentBits === 0) {
    exponent = -1074 // subnormal
  } else {
    mantissa |= 1n << 52n
    exponent = exponentBits - 1075
  }
  while (mantissa > 0n && (mantissa & 1n) === 0n && exponent < 0) {
    mantissa >>= 1n
    exponent++
  }
  return exponent >= 0 ? { num: mantissa << BigInt(exponent), den: 1n } : { num: mantissa, den: 1n << BigInt(-exponent) }
}

/** ⌊√n⌋ for a bigint n >= 0 (Newton's method on integers). */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError('isqrt of a negative number')
  if (n < 2n) return n
  let x = BigInt(Math.floor(Math.sqrt(Number(n))))
  // Correct the floating-point start until x = ⌊√n⌋.
  while (x * x > n) x = (x + n / x) >> 1n
  while ((x + 1n) * (x + 1n) <= n) x++
  return x
}
