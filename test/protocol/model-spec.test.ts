import { describe, expect, test } from 'vitest'
import { federatedLayout, federatedLength, initFederatedWeights, mfSpec } from '../../protocol/model-spec.ts'

describe('model specs', () => {
  const spec = mfSpec('movies', { buckets: 10, dim: 3 })

  test('the federated vector holds every federated tensor, in order, and no local one', () => {
    // item_embedding 10x3 + item_bias 10 + tower_kernel 3x3 + tower_bias 3; user_embedding is local.
    expect(federatedLength(spec)).toBe(30 + 10 + 9 + 3)
    expect(federatedLayout(spec).map((s) => [s.tensor.name, s.offset, s.size])).toEqual([
      ['item_embedding', 0, 30],
      ['item_bias', 30, 10],
      ['tower_kernel', 40, 9],
      ['tower_bias', 49, 3],
    ])
  })

  test('initialization follows each tensor’s initializer', () => {
    let state = 1
    const uniform = () => ((state = (state * 48271) % 2147483647) / 2147483647)
    const weights = initFederatedWeights(mfSpec('big', { buckets: 4000, dim: 16 }), uniform)
    const embedding = weights.subarray(0, 64000)
    const mean = embedding.reduce((a, b) => a + b, 0) / embedding.length
    const std = Math.sqrt(embedding.reduce((a, b) => a + (b - mean) ** 2, 0) / embedding.length)
    expect(Math.abs(mean)).toBeLessThan(0.005)
    expect(std).toBeGreaterThan(0.095)
    expect(std).toBeLessThan(0.105)
    expect(weights.subarray(64000, 68000).every((x) => x === 0)).toBe(true)
    const kernel = weights.subarray(68000, 68256)
    const limit = Math.sqrt(6 / 32)
    expect(kernel.every((x) => Math.abs(x) <= limit)).toBe(true)
    expect(Math.max(...kernel)).toBeGreaterThan(limit * 0.8)
  })

  test('rejects impossible shapes', () => {
    expect(() => mfSpec('x', { buckets: 0, dim: 4 })).toThrow(RangeError)
    expect(() => mfSpec('x', { buckets: 4, dim: 1.5 })).toThrow(RangeError)
  })
})
