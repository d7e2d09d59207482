/**
 * The posterior of the user vector that Thompson sampling draws from.
 *
 * With the item side frozen, fitting v_user is a logistic regression on the item vectors t_j of
 * the user's examples (`train.ts`, reconstruction). Its Laplace approximation (Chapelle & Li,
 * "An Empirical Evaluation of Thompson Sampling", NeurIPS 2011, Algorithm 3; Bishop, Pattern
 * Recognition and Machine Learning, 2006, §4.5.1) is Gaussian around the fitted vector v with
 * precision
 *
 *   H = λ₀ I + Σ_j w_j σ(s_j)(1 − σ(s_j)) t_j t_jᵀ,   s_j = ⟨v, t_j⟩ + p_j,
 *
 * w_j the example weights. λ₀ is the prior precision: the model's L2 term gives 2λW (W the
 * weight sum), which for a user with a handful of events is so small that draws would be noise;
 * it is floored at `MIN_PRIOR_PRECISION` (a standard normal prior).
 *
 * A draw is v + s·L⁻ᵀ z with H = L Lᵀ (Cholesky) and z standard normal: its covariance is
 * s² L⁻ᵀ L⁻¹ = s² H⁻¹.
 */
import type { UniformSource } from '../../protocol/model-spec.ts'

export const MIN_PRIOR_PRECISION = 1

/** The precision H above, d×d row-major. `vectors` is m×d row-major. */
export function laplacePrecision(vectors: Float32Array, scores: Float32Array, weights: Float32Array, dim: number, priorPrecision: number): Float64Array {
  const h = new Float64Array(dim * dim)
  for (let i = 0; i < dim; i++) h[i * dim + i] = Math.max(priorPrecision, MIN_PRIOR_PRECISION)
  for (let j = 0; j < scores.length; j++) {
    const p = 1 / (1 + Math.exp(-(scores[j] as number)))
    const c = (weights[j] as number) * p * (1 - p)
    const row = j * dim
    for (let a = 0; a < dim; a++) {
      const ta = c * (vectors[row + a] as number)
      for (let b = 0; b <= a; b++) h[a * dim + b] = (h[a * dim + b] as number) + ta * (vectors[row + b] as number)
    }
  }
  for (let a = 0; a < dim; a++) for (let b = 0; b < a; b++) h[b * dim + a] = h[a * dim + b] as number
  return h
}

/** Lower-triangular L with L Lᵀ = `a` (d×d, symmetric positive definite). */
export function cholesky(a: Float64Array, dim: number): Float64Array {
  const l = new Float64Array(dim * dim)
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * dim + j] as number
      for (let k = 0; k < j; k++) sum -= (l[i * dim + k] as number) * (l[j * dim + k] as number)
      if (i === j) {
        if (!(sum > 0)) throw new RangeError('the precision matrix is not positive definite')
        l[i * dim + i] = Math.sqrt(sum)
      } else l[i * dim + j] = sum / (l[j * dim + j] as number)
    }
  }
  return l
}

/** A standard normal draw (Box & Muller 1958); 1 − u keeps the logarithm finite. */
export function standardNormal(uniform: UniformSource): number {
  return Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform())
}

/**
 * `count` draws of the user vector, as the columns of a d×count row-major matrix (so that
 * item vectors [n, d] times it give every draw's affinities at once).
 */
export function drawUserVectors(mean: Float32Array, choleskyOfPrecision: Float64Array, scale: number, count: number, uniform: UniformSource): Float32Array {
  const dim = mean.length
  const out = new Float32Array(dim * count)
  const z = new Float64Array(dim)
  const x = new Float64Array(dim)
  for (let m = 0; m < count; m++) {
    for (let i = 0; i < dim; i++) z[i] = standardNormal(uniform)
    // Solve Lᵀ x = z by back substitution: x = L⁻ᵀ z.
    for (let i = dim - 1; i >= 0; i--) {
      let sum = z[i] as number
      for (let k = i + 1; k < dim; k++) sum -= (choleskyOfPrecision[k * dim + i] as number) * (x[k] as number)
      x[i] = sum / (choleskyOfPrecision[i * dim + i] as number)
    }
    for (let i = 0; i < dim; i++) out[i * count + m] = (mean[i] as number) + scale * (x[i] as number)
  }
  return out
}
