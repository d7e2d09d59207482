import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { CLIP_INDICATOR_ELEMENTS, ClipIndicator, clipForUpload, clipL2, l2Norm } from '../../protocol/clip.ts'

describe('clipL2: known answers', () => {
  test('a vector of norm 5 clipped to 1 has norm 1 and the same direction', () => {
    const { values, norm, clipped } = clipL2([3, 4], 1)
    expect(norm).toBe(5)
    expect(clipped).toBe(true)
    expect(l2Norm(values)).toBeLessThanOrEqual(1)
    expect(l2Norm(values)).toBeCloseTo(1, 6)
    // Same direction: (3, 4)/5, to float32 precision.
    expect(values[0]).toBeCloseTo(0.6, 6)
    expect(values[1]).toBeCloseTo(0.8, 6)
    expect((values[0] as number) * 4 - (values[1] as number) * 3).toBeCloseTo(0, 6)
  })

  test('a vector of norm 5 clipped to 10 (or to exactly 5) is untouched', () => {
    for (const c of [10, 5]) {
      const { values, norm, clipped } = clipL2(Float32Array.of(3, -4), c)
      expect(clipped).toBe(false)
      expect(norm).toBe(5)
      expect(Array.from(values)).toEqual([3, -4])
    }
    const zero = clipL2(new Float32Array(4), 0.1)
    expect(zero.clipped).toBe(false)
    expect(Array.from(zero.values)).toEqual([0, 0, 0, 0])
  })

  test('does not modify its input', () => {
    const input = Float32Array.of(30, 40)
    clipL2(input, 1)
    expect(Array.from(input)).toEqual([30, 40])
  })

  test('the float32 result never exceeds C as l2Norm computes it (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 300 }),
        fc.double({ min: 1e-6, max: 1e3, noNaN: true }),
        (xs, c) => {
          const { values, norm, clipped } = clipL2(xs, c)
          expect(l2Norm(values)).toBeLessThanOrEqual(c)
          expect(clipped).toBe(norm > c)
          if (clipped) expect(l2Norm(values)).toBeGreaterThan(c * (1 - 1e-5))
        },
      ),
      { numRuns: 300 },
    )
  })

  test('names the argument it refuses', () => {
    expect(() => clipL2([1], 0)).toThrow(RangeError)
    expect(() => clipL2([1], -1)).toThrow(/clipNorm/)
    expect(() => clipL2([1], Number.NaN)).toThrow(/clipNorm/)
    expect(() => clipL2([1], Number.POSITIVE_INFINITY)).toThrow(/clipNorm/)
    expect(() => clipL2([1], '1' as unknown as number)).toThrow(TypeError)
    expect(() => clipL2([1, Number.NaN], 1)).toThrow(/values\[1\]/)
    expect(() => clipL2([1e39], 1)).toThrow(/finite as float32/)
  })
})

describe('l2Norm', () => {
  test('sums in float64 and survives overflow of the squares', () => {
    expect(l2Norm([3, 4])).toBe(5)
    expect(l2Norm([])).toBe(0)
    expect(l2Norm([1e200, 1e200]) / (Math.SQRT2 * 1e200)).toBeCloseTo(1, 12)
  })
})

describe('clipForUpload: the clipped delta and the clipping indicator', () => {
  test('appends +1/2 when within C and -1/2 when clipped', () => {
    const within = clipForUpload(Float32Array.of(0.3, 0.4), 1)
    expect(within.values.length).toBe(2 + CLIP_INDICATOR_ELEMENTS)
    expect(Array.from(within.values)).toEqual([Math.fround(0.3), Math.fround(0.4), ClipIndicator.Unclipped])
    const clipped = clipForUpload(Float32Array.of(3, 4), 1)
    expect(clipped.clipped).toBe(true)
    expect(clipped.values[2]).toBe(ClipIndicator.Clipped)
    expect(l2Norm(clipped.values.subarray(0, 2))).toBeLessThanOrEqual(1)
  })

  test('the sum of indicators gives the number clipped, not who', () => {
    const norms = [0.5, 2, 0.9, 3, 1.5, 0.1]
    const c = 1
    let sum = 0
    for (const n of norms) sum += clipForUpload(Float32Array.of(n, 0), c).values[2] as number
    // Σ(b_i − 1/2) = (n − clipped) − n/2, so clipped = n/2 − Σ.
    expect(norms.length / 2 - sum).toBe(norms.filter((n) => n > c).length)
  })
})
