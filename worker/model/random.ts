/**
 * Randomness for weight initialization, shuffling and negative sampling. None of it needs
 * cryptographic quality (DESIGN.md §4 keeps cryptographic randomness for masks and keys); what it
 * needs is to be seedable, so that tests and simulations are reproducible.
 */
import type { UniformSource } from '../../protocol/model-spec.ts'

/**
 * A seeded generator of uniform numbers in [0, 1): mulberry32 (Tommy Ettinger, 2017), a 32-bit
 * state generator that passes gjrand and PractRand to 2^32 outputs; ample for shuffling.
 */
export function seededUniform(seed: number): UniformSource {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A generator seeded from the platform's entropy (both workers and Node have `crypto`). */
export function freshUniform(): UniformSource {
  return seededUniform(crypto.getRandomValues(new Uint32Array(1))[0] ?? 0)
}

/** A uniform integer in [0, n). */
export function randomInt(uniform: UniformSource, n: number): number {
  return Math.floor(uniform() * n)
}

/** Shuffles `array` in place (Fisher & Yates; Durstenfeld's in-place variant, CACM 1964). */
export function shuffle<T>(array: T[], uniform: UniformSource): void {
  for (let i = array.length - 1; i > 0; i--) {
    const j = randomInt(uniform, i + 1)
    const tmp = array[i] as T
    array[i] = array[j] as T
    array[j] = tmp
  }
}
