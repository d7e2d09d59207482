import { describe, expect, test } from 'vitest'
import fc from 'fast-check'
import { clipL2, dequantizeSum, inputLimit, quantizationLevels, quantize } from '../../protocol/secagg/quantize.ts'
import { seededUniform } from '../../worker/model/random.ts'

describe('quantization into Z_2^b', () => {
  const params = { clipNorm: 2, modulusBits: 20, maxSummands: 100 }

  test('levels leave room for the sum of n clients', () => {
    const levels = quantizationLevels(params)
    expect(levels).toBe(Math.floor((2 ** 20 - 1) / 100))
    expect(levels * 100).toBeLessThan(2 ** 20)
    expect(inputLimit(32, 1000) * 1000).toBeLessThanOrEqual(2 ** 32 - 1)
    expect(() => inputLimit(4, 100)).toThrow(/no room/)
    expect(() => quantizationLevels({ ...params, clipNorm: 0 })).toThrow(/clipNorm/)
  })

  test('clipping scales to the L2 norm and leaves short vectors alone', () => {
    const clipped = clipL2([3, 4], 1)
    expect(Math.hypot(...clipped)).toBeCloseTo(1, 12)
    expect([...clipL2([0.3, 0.4], 1)]).toEqual([0.3, 0.4])
    expect(() => clipL2([1, Number.NaN], 1)).toThrow(/element 1/)
  })

  test('quantized values stay in [0, L] and the sum of n maxima does not wrap', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -100, max: 100, noNaN: true }), { minLength: 1, maxLength: 50 }), (x) => {
        const q = quantize(x, params)
        const levels = quantizationLevels(params)
        for (const v of q) expect(v).toBeLessThanOrEqual(levels)
      }),
    )
  })

  test('stochastic rounding is unbiased: the dequantized mean of many clients is close', () => {
    const random = seededUniform(11)
    const x = [0.3, -0.7, 1.1, 0]
    const n = 2000
    const big = { clipNorm: 2, modulusBits: 32, maxSummands: n }
    const sum = new Float64Array(x.length)
    for (let c = 0; c < n; c++) {
      const q = quantize(x, { clipNorm: 2, modulusBits: 8, maxSummands: 1 }, random)
      q.forEach((v, i) => (sum[i] = (sum[i] as number) + v))
    }
    const mean = dequantizeSum(sum, n, { clipNorm: 2, modulusBits: 8, maxSummands: 1 }).map((v) => v / n)
    x.forEach((v, i) => expect(mean[i]).toBeCloseTo(v, 2))
    // Fine grid: one client's round trip is within one step.
    const one = dequantizeSum(quantize(x, big, random), 1, big)
    x.forEach((v, i) => expect(Math.abs((one[i] as number) - v)).toBeLessThanOrEqual((2 * 2) / quantizationLevels(big)))
  })
})
