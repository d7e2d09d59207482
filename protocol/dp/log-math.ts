/**
 * Log-space arithmetic for the privacy accountant: sums of terms that overflow a double
 * (binomial expansions up to order 1024) are kept as natural logarithms.
 */

/** log(e^a + e^b), exact for -Infinity operands. */
export function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b)
  const lo = Math.min(a, b)
  if (lo === -Infinity) return hi
  return hi + Math.log1p(Math.exp(lo - hi))
}

/** log(e^a - e^b) for a >= b; -Infinity when a === b. */
export function logSub(a: number, b: number): number {
  if (b > a) throw new RangeError(`logSub: b (${b}) must not exceed a (${a})`)
  if (b === -Infinity) return a
  if (a === b) return -Infinity
  return a + Math.log1p(-Math.exp(b - a))
}

/** log(sum_i e^{x_i}) with the largest term factored out (one pass for the max, one for the sum). */
export function logSumExp(xs: ArrayLike<number>): number {
  let max = -Infinity
  for (let i = 0; i < xs.length; i++) max = Math.max(max, xs[i] as number)
  if (max === -Infinity || max === Infinity) return max
  let sum = 0
  for (let i = 0; i < xs.length; i++) sum += Math.exp((xs[i] as number) - max)
  return max + Math.log(sum)
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI)
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI)

/**
 * erf(x) for |x| < 1.5 by the series erf(x) = (2/sqrt(pi)) e^{-x^2} sum_n 2^n x^{2n+1} / (2n+1)!!
 * (Abramowitz & Stegun 7.1.6): every term is positive, so there is no cancellation.
 */
function erfSeries(x: number): number {
  if (x < 0) return -erfSeries(-x)
  const x2 = x * x
  let term = x
  let sum = x
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1)
    sum += term
    if (term < sum * 1e-17) break
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum
}

/**
 * log(erfcx(x)) = log(e^{x^2} erfc(x)) for x >= 1.5, by the continued fraction
 * erfc(x) = (e^{-x^2}/sqrt(pi)) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
 * (A&S 7.1.14), evaluated with the modified Lentz algorithm (Numerical Recipes §5.2).
 */
function logErfcxContinuedFraction(x: number): number {
  const tiny = 1e-300
  let f = x
  let c = x
  let d = 0
  for (let k = 1; k < 5000; k++) {
    const a = k / 2
    d = x + a * d
    if (d === 0) d = tiny
    c = x + a / c
    if (c === 0) c = tiny
    d = 1 / d
    const delta = c * d
    f *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  return -LOG_SQRT_PI - Math.log(f)
}

/**
 * log(erfc(x)) with full relative accuracy for large positive x, where erfc(x) underflows
 * (the role scipy's `log_ndtr` plays in dp_accounting's `_log_erfc`).
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN
  if (x === Infinity) return -Infinity
  if (x === -Infinity) return Math.LN2
  if (x >= 1.5) return -x * x + logErfcxContinuedFraction(x)
  if (x <= -1.5) return Math.log(2 - Math.exp(-x * x + logErfcxContinuedFraction(-x)))
  // |x| < 1.5: erfc(x) = 1 - erf(x) >= erfc(1.5) ~ 0.034, so at most ~1.5 digits are lost.
  return Math.log1p(-erfSeries(x))
}
