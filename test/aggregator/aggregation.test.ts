import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { matchesAnySecret, secretEquals } from '../../aggregator/auth.ts'
import { resolveOptions } from '../../aggregator/options.ts'
import { cryptoUniform } from '../../aggregator/random.ts'
import { FedAvg } from '../../aggregator/rounds/fedavg.ts'
import { PlainSumStrategy } from '../../aggregator/rounds/plain-sum.ts'
import { sampleWithoutReplacement } from '../../aggregator/rounds/selection.ts'
import { HearthError } from '../../protocol/errors.ts'

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    return error instanceof HearthError ? error.code : `not a HearthError: ${String(error)}`
  }
  return undefined
}

describe('plain sum + FedAvg', () => {
  test('equal base + mean of the deltas, rounded once to float32', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 6 }),
        fc.infiniteStream(fc.float({ min: -10, max: 10, noNaN: true })),
        async (length, n, stream) => {
          const take = () => Float32Array.from({ length }, () => stream.next().value as number)
          const base = take()
          const deltas = Array.from({ length: n }, take)
          const aggregation = new PlainSumStrategy().open({ roundId: 1, model: 'm', vectorLength: length })
          deltas.forEach((d, k) => aggregation.add(`p${k}`, d))
          expect(aggregation.count).toBe(n)
          const next = new FedAvg().step(base, await aggregation.result())
          for (let i = 0; i < length; i++) {
            let sum = 0
            for (const d of deltas) sum += d[i] as number
            expect(next[i]).toBe(Math.fround((base[i] as number) + sum / n))
          }
        },
      ),
    )
  })

  test('a rejected contribution leaves no trace in the sum', async () => {
    const aggregation = new PlainSumStrategy({ maxNorm: 1 }).open({ roundId: 1, model: 'm', vectorLength: 2 })
    aggregation.add('a', new Float32Array([0.5, 0.5]))
    expect(codeOf(() => aggregation.add('b', new Float32Array([1, 1])))).toBe('HEARTH_ERR_VECTOR_VALUE')
    expect(codeOf(() => aggregation.add('c', new Float32Array([0, Number.NaN])))).toBe('HEARTH_ERR_VECTOR_VALUE')
    expect(codeOf(() => aggregation.add('d', new Float32Array(3)))).toBe('HEARTH_ERR_VECTOR_LENGTH')
    expect(codeOf(() => aggregation.add('e', new Uint32Array(2)))).toBe('HEARTH_ERR_MALFORMED_FRAME')
    expect(aggregation.count).toBe(1)
    expect(Array.from((await aggregation.result()).sum)).toEqual([0.5, 0.5])
  })

  test('parameters are validated when built', () => {
    expect(() => new PlainSumStrategy({ maxNorm: 0 })).toThrow(RangeError)
    expect(() => new FedAvg().step(new Float32Array(2), { sum: new Float64Array(2), count: 0 })).toThrow(RangeError)
    expect(codeOf(() => new FedAvg().step(new Float32Array(2), { sum: new Float64Array(3), count: 1 }))).toBe('HEARTH_ERR_MODEL_MISMATCH')
  })
})

describe('cohort sampling', () => {
  test('draws k distinct items of the input', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer(), { maxLength: 40 }), fc.nat(), (items, seed) => {
        const k = items.length === 0 ? 0 : seed % (items.length + 1)
        const drawn = sampleWithoutReplacement(items, k)
        expect(drawn).toHaveLength(k)
        expect(new Set(drawn).size).toBe(k)
        for (const x of drawn) expect(items).toContain(x)
      }),
    )
    expect(() => sampleWithoutReplacement([1, 2], 3)).toThrow(RangeError)
  })

  test('each of n items is drawn with probability k / n', () => {
    const n = 6
    const k = 2
    const trials = 30_000
    const counts = new Array<number>(n).fill(0)
    const items = Array.from({ length: n }, (_, i) => i)
    for (let t = 0; t < trials; t++) for (const i of sampleWithoutReplacement(items, k)) counts[i]!++
    // Binomial(trials, k/n): mean 10 000, sd ≈ 81.6. Six sd either side: a fair sampler fails
    // this about once in 10^8 runs; a biased one (e.g. modulo bias or a skipped index) fails at once.
    const mean = (trials * k) / n
    const sd = Math.sqrt(trials * (k / n) * (1 - k / n))
    for (const count of counts) expect(Math.abs(count - mean)).toBeLessThan(6 * sd)
  })

  test('follows the random source: the same draws give the same cohort', () => {
    const script = [2, 0, 1]
    let next = 0
    const random = (max: number) => {
      const value = script[next++]!
      expect(value).toBeLessThan(max)
      return value
    }
    // Partial Fisher–Yates on [a b c d e]: swap 0↔2, 1↔1, 2↔3.
    expect(sampleWithoutReplacement(['a', 'b', 'c', 'd', 'e'], 3, random)).toEqual(['c', 'b', 'd'])
  })
})

describe('crypto uniform source', () => {
  test('stays in [0, 1) and looks uniform', () => {
    const uniform = cryptoUniform()
    const draws = Array.from({ length: 20_000 }, uniform)
    expect(draws.every((u) => u >= 0 && u < 1)).toBe(true)
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length
    // sd of the mean = sqrt(1/12 / 20000) ≈ 0.002
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.012)
    expect(new Set(draws).size).toBe(draws.length)
  })
})

describe('secret comparison', () => {
  test('equal only for equal strings, whatever their lengths', () => {
    expect(secretEquals('token', 'token')).toBe(true)
    expect(secretEquals('token', 'tokeN')).toBe(false)
    expect(secretEquals('token', 'token-longer')).toBe(false)
    expect(secretEquals('', 'token')).toBe(false)
    expect(matchesAnySecret('b', ['a', 'b', 'c'])).toBe(true)
    expect(matchesAnySecret('d', ['a', 'b', 'c'])).toBe(false)
  })
})

describe('options', () => {
  test('defaults: dev key, open admin and CORS, each with a warning; one default model', () => {
    const resolved = resolveOptions()
    expect(resolved.appKeys).toEqual(['dev-app-key'])
    expect(resolved.warnings).toHaveLength(3)
    expect(resolved.models.map((m) => m.name)).toEqual(['default'])
    expect(resolved.models[0]!.spec.options).toEqual({ buckets: 4096, dim: 16 })
    expect(resolved.rounds).toMatchObject({ minCohort: 3, maxCohort: 50 })
    expect(resolved.rounds.secagg).toBeNull()
    expect(resolveOptions({ rounds: { aggregation: 'secagg', uploadTimeoutMs: 9_000 } }).rounds.secagg).toEqual({
      variant: 'secagg+',
      clipNorm: 10,
      modulusBits: 32,
      expectedDropout: 0.1,
      corruptFraction: 0.05,
      maxGroupSize: 500,
      consistencyCheck: false,
      stageTimeoutsMs: { 'masked-input-collection': 9_000 },
    })
    expect(resolved.dataDir).toBe('.hearth')
    const configured = resolveOptions({ appKeys: ['k'], adminToken: 'sixteen-chars-ok', corsOrigins: ['https://a.example'] })
    expect(configured.warnings).toEqual([])
  })

  test('invalid options are refused with HEARTH_ERR_INVALID_CONFIG naming the option', () => {
    for (const [options, name] of [
      [{ rounds: { minCohort: 0 } }, 'rounds.minCohort'],
      [{ rounds: { minCohort: 5, maxCohort: 4 } }, 'rounds.maxCohort'],
      [{ rounds: { uploadTimeoutMs: 1.5 } }, 'rounds.uploadTimeoutMs'],
      [{ rounds: { training: { learningRate: -1 } } }, 'rounds.training.learningRate'],
      [{ appKeys: [] }, 'appKeys'],
      [{ adminToken: 'short' }, 'adminToken'],
      [{ corsOrigins: ['shop.example'] }, 'corsOrigins'],
      [{ models: [{ name: 'a/b' }] }, 'models'],
      [{ models: [{ name: 'a' }, { name: 'a' }] }, 'models'],
      [{ models: [{ name: 'a', mf: { buckets: 0, dim: 1 } }] }, 'models.a.mf'],
      [{ port: 70_000 }, 'port'],
      [{ rounds: { aggregation: 'bogus' as 'plain' } }, 'rounds.aggregation'],
      [{ rounds: { secagg: {} } }, 'rounds.secagg'],
      [{ rounds: { aggregation: 'secagg', minCohort: 2 } }, 'rounds.minCohort'],
      [{ rounds: { aggregation: 'secagg', maxUpdateNorm: 1 } }, 'rounds.maxUpdateNorm'],
      [{ rounds: { aggregation: 'secagg', secagg: { clipNorm: 1 }, privacy: { mode: 'central', clipNorm: 1, noiseMultiplier: 1 } } }, 'rounds.secagg.clipNorm'],
      [{ rounds: { aggregation: 'secagg', secagg: { maxGroupSize: 4 } } }, 'rounds.secagg.maxGroupSize'],
      [{ rounds: { aggregation: 'secagg', secagg: { expectedDropout: 1 } } }, 'rounds.secagg.expectedDropout'],
      [{ rounds: { aggregation: 'secagg', secagg: { modulusBits: 33 } } }, 'rounds.secagg.modulusBits'],
      [{ rounds: { aggregation: 'secagg', secagg: { variant: 'x' as 'secagg' } } }, 'rounds.secagg.variant'],
      [{ rounds: { aggregation: 'secagg', secagg: { stageTimeoutsMs: { unmasking: 0 } } } }, 'rounds.secagg.stageTimeoutsMs.unmasking'],
    ] as const) {
      let caught: unknown
      try {
        resolveOptions(options)
      } catch (error) {
        caught = error
      }
      expect(caught, name).toBeInstanceOf(HearthError)
      expect((caught as HearthError).code).toBe('HEARTH_ERR_INVALID_CONFIG')
      expect((caught as HearthError).message).toContain(name)
    }
  })
})
