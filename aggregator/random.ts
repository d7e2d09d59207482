/**
 * Randomness for the aggregator, all from the operating system's CSPRNG through `node:crypto`.
 * Weight initialization would not need cryptographic quality, but cohort sampling does (a
 * predictable sampler lets a client steer itself into rounds), and one source is simpler.
 */
import { getRandomValues, randomInt } from 'node:crypto'
import type { UniformSource } from '../protocol/model-spec.ts'

/** Uniform integer in [0, maxExclusive). */
export type RandomInt = (maxExclusive: number) => number

/**
 * `crypto.randomInt`: uniform over [0, max) by rejection sampling, so without modulo bias
 * (Node docs, "crypto.randomInt").
 */
export const cryptoRandomInt: RandomInt = (maxExclusive) => randomInt(maxExclusive)

const BATCH = 1024

/**
 * A {@link UniformSource} over [0, 1) with 53 random bits per draw (every double of the form
 * k / 2^53), drawn from `crypto.getRandomValues` in batches.
 */
export function cryptoUniform(): UniformSource {
  const words = new Uint32Array(BATCH)
  let next = BATCH
  return () => {
    if (next + 2 > BATCH) {
      getRandomValues(words)
      next = 0
    }
    const high = (words[next++] as number) >>> 5 // 27 bits
    const low = (words[next++] as number) >>> 6 // 26 bits
    return (high * 2 ** 26 + low) / 2 ** 53
  }
}
