/**
 * Issue 4, item 5: the worker's scheduled training disposes every tensor it makes. After one
 * warm-up run (which may allocate what the session keeps for good), 100 more training runs,
 * each followed by a ranking, leave the tfjs engine with exactly as many tensors and bytes. So
 * do federated rounds on the rows a device reaches, which build and dispose a model each time.
 */
import * as tf from '../../worker/tf.ts'
import { afterEach, expect, test } from 'vitest'
import type { TrainingPlan } from '../../protocol/messages.ts'
import { initFederatedWeights } from '../../protocol/model-spec.ts'
import { buildTrainingData } from '../../worker/model/examples.ts'
import { MfModel } from '../../worker/model/mf-model.ts'
import { trainFromGlobal } from '../../worker/model/round.ts'
import { negativesFromPool } from '../../worker/model/row-subset.ts'
import type { HearthWorkerApi } from '../../worker/api.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { distinctItems, seededUniform, SMALL_SPEC } from './helpers.ts'

const PLAN: TrainingPlan = { epochs: 1, batchSize: 8, learningRate: 0.05, maxExamples: 200 }
const [liked = [], candidates = []] = distinctItems(['liked', 'candidate'], 20, SMALL_SPEC.options.buckets)

let core: HearthWorkerApi | null = null
afterEach(async () => {
  await core?.close()
  core = null
})

test('memory is flat over 100 training runs (tensors and bytes)', { timeout: 120_000 }, async () => {
  core = createWorkerCore({ seed: 3, openStore: async () => new MemoryDeviceStore() })
  await core.init({ dbName: 'memory', spec: SMALL_SPEC, backends: ['cpu'] })
  await core.record(liked.map((item, at) => ({ item, kind: at % 3 === 0 ? 'purchase' : 'like', at })))
  await core.installGlobal(1, initFederatedWeights(SMALL_SPEC, seededUniform(4)))
  await core.trainLocal(PLAN)
  await core.rank(candidates)
  const before = tf.memory()
  for (let run = 0; run < 100; run++) {
    // Every other run under a budget, the scheduler's path (DESIGN.md §6), which may stop early.
    const result = await core.trainLocal(PLAN, run % 2 === 0 ? { maxMs: 1_000, maxTensorBytes: 64 << 20 } : undefined)
    expect(result.steps).toBeGreaterThan(0)
    await core.rank(candidates)
  }
  const after = tf.memory()
  expect(after.numTensors).toBe(before.numTensors)
  expect(after.numBytes).toBe(before.numBytes)
})

test('memory is flat over 50 rounds trained on the rows the device reaches', { timeout: 120_000 }, async () => {
  const model = MfModel.create(SMALL_SPEC, seededUniform(5))
  const seen = Array.from({ length: 60 }, (_, i) => ({ item: `seen-${i}` }))
  const data = buildTrainingData(liked.map((item, at) => ({ item, kind: 'like', at })), seen, model.encoding, 200)
  expect(negativesFromPool(data)).toBe(true)
  const global = initFederatedWeights(SMALL_SPEC, seededUniform(6))
  const round = { plan: PLAN, optimizer: 'adam' as const, negativesPerPositive: 4, reconstruction: { steps: 5, learningRate: 0.05, maxExamples: 200 }, uniform: seededUniform(7) }
  await trainFromGlobal(model, global, data, round)
  const before = tf.memory()
  for (let run = 0; run < 50; run++) await trainFromGlobal(model, global, data, round)
  const after = tf.memory()
  expect(after.numTensors).toBe(before.numTensors)
  expect(after.numBytes).toBe(before.numBytes)
  model.dispose()
})
