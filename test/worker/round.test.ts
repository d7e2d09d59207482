/**
 * What must hold of a device's round update (model/round.ts), whatever the data:
 * - it is a federated vector: `federatedLength(spec)` elements, the user vector nowhere in it;
 * - it is relative to the round's global weights: global + delta gives the trained weights;
 * - it touches only the item buckets the device trained on (its own items and its sampled
 *   negatives), while the shared tower, which every example passes through, moves;
 * - training only the id-table rows the device can reach (model/row-subset.ts) gives the update
 *   of training the full tables.
 */
import { beforeAll, describe, expect, test } from 'vitest'
import type { InteractionEvent } from '../../protocol/events.ts'
import { federatedLayout, federatedLength, initFederatedWeights, mfSpec } from '../../protocol/model-spec.ts'
import { startBackend } from '../../worker/backend.ts'
import { buildTrainingData } from '../../worker/model/examples.ts'
import { MfModel } from '../../worker/model/mf-model.ts'
import { trainFromGlobal } from '../../worker/model/round.ts'
import type { RoundTrainingOptions } from '../../worker/model/round.ts'
import { negativesFromPool } from '../../worker/model/row-subset.ts'
import { fit, reconstructUser } from '../../worker/model/train.ts'
import { bucketData, seededUniform, SMALL_SPEC } from './helpers.ts'

beforeAll(async () => {
  await startBackend(['cpu'])
})

const layout = Object.fromEntries(federatedLayout(SMALL_SPEC).map((s) => [s.tensor.name, s]))
const { buckets, dim } = SMALL_SPEC.options

function options(negativesPerPositive: number): RoundTrainingOptions {
  return {
    plan: { epochs: 2, batchSize: 4, learningRate: 0.5, maxExamples: 100 },
    optimizer: 'sgd',
    negativesPerPositive,
    reconstruction: { steps: 5, learningRate: 0.05, maxExamples: 100 },
    uniform: seededUniform(11),
  }
}

/** Buckets whose embedding row or bias moved. */
function movedBuckets(delta: Float32Array): Set<number> {
  const moved = new Set<number>()
  const embedding = layout['item_embedding']
  const bias = layout['item_bias']
  if (embedding === undefined || bias === undefined) throw new Error('layout')
  for (let row = 0; row < buckets; row++) {
    if (delta[bias.offset + row] !== 0) moved.add(row)
    for (let k = 0; k < dim; k++) if (delta[embedding.offset + row * dim + k] !== 0) moved.add(row)
  }
  return moved
}

const examples = bucketData([
  { bucket: 3, label: 1, weight: 1 },
  { bucket: 17, label: 1, weight: 0.25 },
  { bucket: 40, label: 0, weight: 1 },
  { bucket: 41, label: 1, weight: 1.5 },
  { bucket: 200, label: 1, weight: 0.5 },
])

describe('a device’s round update', () => {
  test('is relative to the round’s global weights and holds only federated tensors', async () => {
    const model = MfModel.create(SMALL_SPEC, seededUniform(1))
    // The device holds other weights than the round's: the delta must not be relative to them.
    model.setFederated(initFederatedWeights(SMALL_SPEC, seededUniform(2)))
    const userBefore = await model.readLocal()
    const global = initFederatedWeights(SMALL_SPEC, seededUniform(3))
    const { delta, trained } = await trainFromGlobal(model, global, examples, options(4))

    expect(delta.length).toBe(federatedLength(SMALL_SPEC))
    expect(trained).toEqual(await model.readFederated())
    // float32 subtraction then addition: back to the trained value within one rounding.
    for (let i = 0; i < delta.length; i++) {
      const sum = Math.fround((global[i] as number) + (delta[i] as number))
      expect(Math.abs(sum - (trained[i] as number))).toBeLessThanOrEqual(Math.abs(trained[i] as number) * 2 ** -23)
    }
    // The user vector was reconstructed on the device, and stays there.
    expect(await model.readLocal()).not.toEqual(userBefore)
    model.dispose()
  })

  test('touches exactly the buckets the device trained on when nothing is sampled', async () => {
    const model = MfModel.create(SMALL_SPEC, seededUniform(4))
    const global = initFederatedWeights(SMALL_SPEC, seededUniform(5))
    const { delta } = await trainFromGlobal(model, global, examples, options(0))
    expect([...movedBuckets(delta)].sort((a, b) => a - b)).toEqual([3, 17, 40, 41, 200])
    const kernel = layout['tower_kernel']
    const towerBias = layout['tower_bias']
    if (kernel === undefined || towerBias === undefined) throw new Error('layout')
    expect(delta.subarray(kernel.offset, kernel.offset + kernel.size).every((x) => x !== 0)).toBe(true)
    expect(delta.subarray(towerBias.offset, towerBias.offset + towerBias.size).every((x) => x !== 0)).toBe(true)
    model.dispose()
  })

  test('with sampled negatives, touches its own buckets and at most the negatives drawn', async () => {
    const model = MfModel.create(SMALL_SPEC, seededUniform(6))
    const global = initFederatedWeights(SMALL_SPEC, seededUniform(7))
    const { delta, steps } = await trainFromGlobal(model, global, examples, options(4))
    expect(steps).toBe(4) // 2 epochs of ceil(5 / 4) batches
    const moved = movedBuckets(delta)
    for (const bucket of examples.items.buckets) expect(moved.has(bucket)).toBe(true)
    // 4 positives x 4 negatives x 2 epochs draws at most 32 other buckets.
    expect(moved.size).toBeLessThanOrEqual(examples.items.count + 32)
    expect(moved.size).toBeGreaterThan(examples.items.count)
    model.dispose()
  })

  test('is all zeros for a device without data', async () => {
    const model = MfModel.create(SMALL_SPEC, seededUniform(8))
    const global = initFederatedWeights(SMALL_SPEC, seededUniform(9))
    const { delta, steps } = await trainFromGlobal(model, global, bucketData([]), options(4))
    expect(steps).toBe(0)
    expect(delta.every((x) => x === 0)).toBe(true)
    model.dispose()
  })

  test('trains only the rows the device can reach, with the update of training the full tables', async () => {
    const spec = mfSpec('subset', { buckets: 256, dim: 8, features: { buckets: 16 } })
    const genre = (i: number): { genre: string } => ({ genre: `g${i % 5}` })
    const liked: InteractionEvent[] = Array.from({ length: 12 }, (_, i) => ({ item: `liked-${i}`, kind: i % 4 === 0 ? 'purchase' : 'like', at: i, features: genre(i) }))
    const seen = Array.from({ length: 70 }, (_, i) => ({ item: `seen-${i}`, features: genre(i) }))
    const global = initFederatedWeights(spec, seededUniform(12))
    const full = MfModel.create(spec, seededUniform(13))
    const data = buildTrainingData(liked, seen, full.encoding, 100)
    expect(negativesFromPool(data)).toBe(true)
    const round = { ...options(4), optimizer: 'adam' as const, plan: { epochs: 3, batchSize: 4, learningRate: 0.05, maxExamples: 100 } }

    // The full tables, step by step as a round runs them.
    const user = await full.readLocal()
    const uniform = seededUniform(14)
    full.setFederated(global)
    await reconstructUser(full, data, { ...round.reconstruction, negativesPerPositive: 4, uniform })
    const plan = round.plan
    await fit(full, data, { epochs: plan.epochs, batchSize: plan.batchSize, learningRate: plan.learningRate, optimizer: 'adam', trainable: 'federated', negativesPerPositive: 4, uniform })
    const expected = await full.readFederated()

    const device = MfModel.create(spec, seededUniform(15))
    device.setLocal(user)
    const { trained } = await trainFromGlobal(device, global, data, { ...round, uniform: seededUniform(14) })
    expect(trained.length).toBe(expected.length)
    let worst = 0
    for (let i = 0; i < trained.length; i++) worst = Math.max(worst, Math.abs((trained[i] as number) - (expected[i] as number)))
    expect(worst).toBeLessThanOrEqual(1e-6)
    expect(trained).not.toEqual(global)
    expect(await device.readLocal()).toEqual(await full.readLocal())
    full.dispose()
    device.dispose()
  })
})
