/** Summary statistics the benchmarks share, so every table means the same by "median" and "p95". */

/**
 * The q-quantile of `values` by nearest rank: the smallest sample with at least a fraction `q`
 * of the samples at or below it (no interpolation, so it is always a measured value). NaN when
 * there are no samples.
 */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN
}

/** The nearest-rank median of `values` (see {@link quantile}). */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5)
}
