import { expect, test } from 'vitest'
import { bytesToWeights, weightsToBytes } from '../../aggregator/models/weights.ts'

test('bytesToWeights reads a Buffer that sits inside Node’s shared pool, as node-postgres returns bytea', () => {
  const weights = Float32Array.from([1.5, -2, 0.125])
  // Small Buffer.from copies land at an offset of the shared pool, where Buffer#slice is a view.
  const pooled = Buffer.from(weightsToBytes(weights))
  expect(pooled.byteOffset > 0 || pooled.buffer.byteLength > pooled.byteLength).toBe(true)
  const read = bytesToWeights(pooled)
  expect(Array.from(read)).toEqual([1.5, -2, 0.125])
  pooled.fill(0)
  expect(Array.from(read)).toEqual([1.5, -2, 0.125])
})
