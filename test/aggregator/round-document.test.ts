import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ROUND_DOCUMENT_DEFAULTS, RoundDocumentError, canonicalJson, parseRoundDocument, roundDocumentHash } from '../../aggregator/config/round-document.ts'

function problemsOf(input: unknown): readonly string[] {
  try {
    parseRoundDocument(input)
  } catch (error) {
    expect(error).toBeInstanceOf(RoundDocumentError)
    expect((error as RoundDocumentError).code).toBe('HEARTH_ERR_INVALID_CONFIG')
    return (error as RoundDocumentError).problems
  }
  throw new Error('the document was accepted')
}

describe('round configuration document', () => {
  it('applies the defaults to a minimal document', () => {
    const document = parseRoundDocument({ version: 1, model: 'default' })
    expect(document).toEqual({ version: 1, model: 'default', ...ROUND_DOCUMENT_DEFAULTS })
  })

  it('accepts a full document and keeps every field', () => {
    const input = {
      version: 1,
      model: 'news.v2',
      description: 'weekly retrain',
      cohort: { target: 200, minimum: 100, overSelection: 1.3 },
      deadlines: { selectionMs: 10_000, trainingMs: 60_000, pauseMs: 1000, secaggStagesMs: { 'share-keys': 20_000 } },
      training: { epochs: 2, batchSize: 16, learningRate: 0.5, maxExamples: 500 },
      sampling: { kind: 'poisson', rate: 0.01 },
      aggregation: { mode: 'secagg', variant: 'secagg+', expectedDropout: 0.2, corruptFraction: 0.05, maxGroupSize: 500 },
      privacy: { mode: 'distributed', clipNorm: 1, targetEpsilon: 4, rounds: 300, budget: { epsilon: 8, delta: 1e-6 }, expectedCohortSize: 200, noise: 'discrete-gaussian' },
      optimizer: { kind: 'fedadam', learningRate: 0.05, beta1: 0.9, beta2: 0.99, tau: 0.001, learningRateDecay: 0.98, tensorLearningRates: { tower_kernel: 0.1 } },
    }
    expect(parseRoundDocument(input)).toEqual(input)
  })

  it('lists every problem of a bad document at once', () => {
    const problems = problemsOf({
      version: 2,
      model: 'no spaces allowed',
      cohort: { target: 0, minimum: 1.5, colour: 'red' },
      deadlines: { trainingMs: -1 },
      aggregation: { mode: 'secagg', expectedDropout: 1.2 },
      privacy: { mode: 'central', clipNorm: 0, budget: { epsilon: 8 } },
      optimizer: { kind: 'sgd' },
      extra: true,
    })
    const expected = [
      /^\/: unknown field extra$/,
      /^\/version: /,
      /^\/model: /,
      /^\/cohort: unknown field colour$/,
      /^\/cohort\/target: must be >= 1$/,
      /^\/cohort\/minimum: /,
      /^\/deadlines\/trainingMs: must be >= 1$/,
      /^\/aggregation\/expectedDropout: /,
      /^\/privacy\/clipNorm: must be > 0$/,
      /^\/privacy\/budget: missing delta$/,
      /^\/optimizer\/kind: must be one of "fedavg", "fedadam", "fedyogi", "fedadagrad"$/,
    ]
    for (const pattern of expected) expect(problems, `${pattern}`).toContainEqual(expect.stringMatching(pattern))
    expect(problems).toHaveLength(expected.length)
  })

  it('checks rules that span fields', () => {
    const problems = problemsOf({
      version: 1,
      model: 'm',
      cohort: { target: 10, minimum: 20 },
      sampling: { kind: 'poisson', rate: 0.1 },
      privacy: { mode: 'distributed', clipNorm: 1, targetEpsilon: 10, budget: { epsilon: 8, delta: 1e-6 } },
    })
    expect(problems).toEqual([
      '/cohort/minimum: 20 exceeds the target 10',
      '/privacy/rounds: required with targetEpsilon (the accountant spreads ε over them)',
      "/privacy/targetEpsilon: 10 exceeds the budget's ε 8",
      '/privacy/expectedCohortSize: required with Poisson sampling (the fixed denominator of DP-FedAvg)',
      '/privacy/mode: distributed DP needs aggregation.mode "secagg" (the noise is only private once summed under masks)',
    ])
    expect(problemsOf({ version: 1, model: 'm', privacy: { mode: 'central', clipNorm: 1, noiseMultiplier: 1, targetEpsilon: 2, rounds: 5, budget: { epsilon: 8, delta: 1e-6 } } })).toEqual([
      '/privacy: give either noiseMultiplier, or targetEpsilon with rounds',
    ])
  })

  it('refuses what is not an object', () => {
    expect(problemsOf(null).length).toBeGreaterThan(0)
    expect(problemsOf([1, 2]).length).toBeGreaterThan(0)
  })

  it('hashes one configuration to one SHA-256 whatever its spelling', () => {
    const a = parseRoundDocument({ version: 1, model: 'm', cohort: { target: 20, minimum: 5 } })
    const b = parseRoundDocument({ cohort: { minimum: 5, target: 20, overSelection: 1 }, model: 'm', version: 1, optimizer: { kind: 'fedavg' } })
    expect(roundDocumentHash(a)).toBe(roundDocumentHash(b))
    expect(roundDocumentHash(a)).toBe(createHash('sha256').update(canonicalJson(a)).digest('hex'))
    expect(roundDocumentHash(a)).not.toBe(roundDocumentHash(parseRoundDocument({ version: 1, model: 'm', cohort: { target: 21, minimum: 5 } })))
    expect(canonicalJson({ b: [2, { d: 1, c: undefined, a: 'x' }], a: null })).toBe('{"a":null,"b":[2,{"a":"x","d":1}]}')
  })
})

describe('per-tensor server rates', () => {
  it('must be positive factors', () => {
    expect(problemsOf({ version: 1, model: 'm', optimizer: { kind: 'fedadam', tensorLearningRates: { tower_kernel: 0 } } })).toEqual([
      expect.stringMatching(/^\/optimizer\/tensorLearningRates\/tower_kernel: must be > 0$/),
    ])
  })
})
