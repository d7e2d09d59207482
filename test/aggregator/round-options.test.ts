import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { parseStartArgs } from '../../aggregator/cli/aggregator-command.ts'
import { UsageError } from '../../aggregator/cli/command.ts'
import { parseRoundDocument, roundDocumentHash, RoundDocumentError } from '../../aggregator/config/round-document.ts'
import { roundOptionsFromDocument } from '../../aggregator/config/round-options.ts'
import { AdaptiveOptimizer } from '../../aggregator/rounds/adaptive-optimizer.ts'
import { FedAvg } from '../../aggregator/rounds/fedavg.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { noiseMultiplierForEpsilon } from '../../protocol/dp/accountant.ts'
import { fetchWeights, getJson, knownDelta, TINY, useApp } from './helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'hearth-round-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const server = useApp()

function file(name: string, content: unknown): string {
  const path = join(dir, name)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}

describe('round configuration document → aggregator options', () => {
  test('maps cohort, deadlines, aggregation, privacy and optimizer', () => {
    const document = parseRoundDocument({
      version: 1,
      model: 'news',
      cohort: { target: 100, minimum: 60, overSelection: 1.3 },
      deadlines: { selectionMs: 2000, trainingMs: 30_000, pauseMs: 500, secaggStagesMs: { 'share-keys': 9000 } },
      sampling: { kind: 'poisson', rate: 0.01 },
      aggregation: { mode: 'secagg', expectedDropout: 0.2, maxGroupSize: 50 },
      privacy: { mode: 'central', clipNorm: 0.5, targetEpsilon: 4, rounds: 200, budget: { epsilon: 8, delta: 1e-6 }, expectedCohortSize: 100 },
      optimizer: { kind: 'fedyogi', learningRate: 0.05 },
    })
    const options = roundOptionsFromDocument(document)
    expect(options).toMatchObject({
      minCohort: 60,
      maxCohort: 130,
      selectionTimeoutMs: 2000,
      uploadTimeoutMs: 30_000,
      pauseMs: 500,
      sampling: { kind: 'poisson', rate: 0.01 },
      aggregation: 'secagg',
      secagg: { expectedDropout: 0.2, maxGroupSize: 50, stageTimeoutsMs: { 'share-keys': 9000 } },
      privacy: { mode: 'central', clipNorm: 0.5, budget: { epsilon: 8, delta: 1e-6 }, expectedCohortSize: 100 },
    })
    const z = noiseMultiplierForEpsilon({ samplingRate: 0.01, rounds: 200, epsilon: 4, delta: 1e-6 }).noiseMultiplier
    expect(options.privacy?.noiseMultiplier).toBe(z)
    expect(options.optimizer).toBeInstanceOf(AdaptiveOptimizer)
    expect(options.optimizer).toMatchObject({ name: 'fedyogi', learningRate: 0.05, beta1: 0.9, beta2: 0.99, tau: 1e-3 })
    expect(roundOptionsFromDocument(parseRoundDocument({ version: 1, model: 'm' })).optimizer).toBeInstanceOf(FedAvg)
  })

  test('distributed DP maps its noise and worst-case survivors', () => {
    const document = parseRoundDocument({
      version: 1,
      model: 'm',
      aggregation: { mode: 'secagg' },
      privacy: { mode: 'distributed', clipNorm: 1, noiseMultiplier: 1, budget: { epsilon: 8, delta: 1e-6 }, noise: 'skellam', minSurvivors: 40 },
    })
    expect(roundOptionsFromDocument(document).privacy).toEqual({
      mode: 'distributed',
      mechanism: 'skellam',
      minSurvivors: 40,
      clipNorm: 1,
      noiseMultiplier: 1,
      budget: { epsilon: 8, delta: 1e-6 },
    })
    const defaults = parseRoundDocument({ version: 1, model: 'm', aggregation: { mode: 'secagg' }, privacy: { mode: 'distributed', clipNorm: 1, noiseMultiplier: 1, budget: { epsilon: 8, delta: 1e-6 } } })
    expect(roundOptionsFromDocument(defaults).privacy).toEqual({ mode: 'distributed', clipNorm: 1, noiseMultiplier: 1, budget: { epsilon: 8, delta: 1e-6 } })
  })

  test('hearth aggregator start --config: serves the document’s model, refuses mixing with round flags', () => {
    const path = file('ok.json', { version: 1, model: 'books', cohort: { target: 5, minimum: 2 } })
    const command = parseStartArgs(['--config', path], {})
    if (command.help) throw new Error('unexpected help')
    expect(command.options.models).toEqual([{ name: 'books' }])
    expect(command.options.rounds).toMatchObject({ minCohort: 2, maxCohort: 5 })
    expect(command.configHash).toBe(roundDocumentHash(parseRoundDocument({ version: 1, model: 'books', cohort: { target: 5, minimum: 2 } })))
    expect(() => parseStartArgs(['--config', path, '--min-cohort', '3', '--dp', 'central'], {})).toThrow(new UsageError('--config replaces the round flags; remove --min-cohort, --dp'))
    expect(() => parseStartArgs(['--config', path, '--model', 'other'], {})).toThrow(/names model "books", which no --model serves/)
    expect(() => parseStartArgs(['--config', file('bad.json', '{ nope')], {})).toThrow(/is not JSON/)
    expect(() => parseStartArgs(['--config', join(dir, 'missing.json')], {})).toThrow(/cannot read --config/)
    const invalid = file('invalid.json', { version: 1, model: 'books', cohort: { target: 0 }, optimizer: { kind: 'sgd' } })
    let refused: unknown
    try {
      parseStartArgs(['--config', invalid], {})
    } catch (error) {
      refused = error
    }
    expect(refused).toBeInstanceOf(RoundDocumentError)
    expect((refused as RoundDocumentError).problems).toHaveLength(2)
  })

  test('a round configured by a document with FedAdam publishes the FedAdam step', async () => {
    const document = parseRoundDocument({
      version: 1,
      model: TINY.name,
      cohort: { target: 3, minimum: 3 },
      deadlines: { selectionMs: 20, trainingMs: 5000, pauseMs: 60_000 },
      optimizer: { kind: 'fedadam', learningRate: 0.1 },
    })
    const running = await server.start({ store: new MemoryStore(), rounds: roundOptionsFromDocument(document) })
    const base = await fetchWeights(running.url, TINY.name, 1)
    const clients = await server.join(running.wsUrl, 3)
    const plans = await Promise.all(clients.map((c) => c.next('round-plan')))
    const deltas = [1, 2, 3].map((k) => knownDelta(k))
    clients.forEach((c, k) => c.upload(plans[0]!.roundId, deltas[k]!))
    await Promise.all(clients.map((c) => c.next('round-result')))
    const published = await fetchWeights(running.url, TINY.name, 2)
    const sum = Float64Array.from(base.values, (_, i) => deltas.reduce((s, d) => s + (d[i] as number), 0))
    const expected = new AdaptiveOptimizer('fedadam', { learningRate: 0.1 }).step(base.values, { sum, count: 3 })
    expect(Array.from(published.values)).toEqual(Array.from(expected))
    const record = (await getJson<RoundRecord>(running.url, `/admin/rounds/${plans[0]!.roundId}`)).body
    expect(record.config.optimizer).toBe('fedadam')
  })
})
