import * as tf from '../../worker/tf.ts'
import { beforeAll, describe, expect, test } from 'vitest'
import { federatedLayout, federatedLength, initFederatedWeights, mfSpec } from '../../protocol/model-spec.ts'
import type { ModelSpec } from '../../protocol/model-spec.ts'
import { startBackend } from '../../worker/backend.ts'
import { buildTrainingData, makeBatch, MAX_EXAMPLE_WEIGHT, NegativeSampler } from '../../worker/model/examples.ts'
import { encodeItems, itemEncoding } from '../../worker/model/item-encoding.ts'
import { scoreItems } from '../../worker/model/hearth-model.ts'
import { itemBucket } from '../../worker/model/hash.ts'
import { lookupRows } from '../../worker/model/lookup.ts'
import { MfModel } from '../../worker/model/mf-model.ts'
import { fit, reconstructUser } from '../../worker/model/train.ts'
import type { OptimizerKind } from '../../worker/model/train.ts'
import { bucketData, referenceScores, scoreBuckets, seededUniform, SMALL_SPEC } from './helpers.ts'
import type { BucketExample } from './helpers.ts'

beforeAll(async () => {
  await startBackend(['cpu'])
})

/** Examples on buckets 0..n-1, every third one a rejection. */
function someExamples(n: number): BucketExample[] {
  return Array.from({ length: n }, (_, bucket) => ({ bucket, label: bucket % 3 === 2 ? 0 : 1, weight: 1 }) as const)
}

function rowsChanged(before: Float32Array, after: Float32Array, spec: ModelSpec, tensor: string): number[] {
  const slice = federatedLayout(spec).find((s) => s.tensor.name === tensor)
  if (slice === undefined) throw new Error(tensor)
  const width = slice.size / spec.options.buckets
  const changed: number[] = []
  for (let row = 0; row < spec.options.buckets; row++) {
    for (let k = 0; k < width; k++) {
      const i = slice.offset + row * width + k
      if (before[i] !== after[i]) {
        changed.push(row)
        break
      }
    }
  }
  return changed
}

describe('MfModel', () => {
  test('refuses specs it cannot build', () => {
    const wrongArchitecture = { ...SMALL_SPEC, architecture: 'other' } as unknown as ModelSpec
    expect(() => MfModel.create(wrongArchitecture, Math.random)).toThrow(expect.objectContaining({ code: 'HEARTH_ERR_MODEL_MISMATCH' }))
    const wrongShape = { ...SMALL_SPEC, tensors: SMALL_SPEC.tensors.map((t) => (t.name === 'tower_kernel' ? { ...t, shape: [8, 4] } : t)) }
    expect(() => MfModel.create(wrongShape, Math.random)).toThrow(/tower_kernel\[8x8\]/)
    const localEmbedding = { ...SMALL_SPEC, tensors: SMALL_SPEC.tensors.map((t) => (t.name === 'item_embedding' ? { ...t, federated: false } : t)) }
    expect(() => MfModel.create(localEmbedding, Math.random)).toThrow(expect.objectContaining({ code: 'HEARTH_ERR_MODEL_MISMATCH' }))
  })

  test('reads back the federated vector it was given, in spec order, as a copy', async () => {
    const model = MfModel.create(SMALL_SPEC, seededUniform(1))
    const weights = Float32Array.from({ length: federatedLength(SMALL_SPEC) }, (_, i) => Math.sin(i))
    model.setFederated(weights)
    weights[0] = 42
    const read = await model.readFederated()
    expect(read[0]).toBe(0)
    expect(read.subarray(1)).toEqual(weights.subarray(1))
    expect(() => model.setFederated(new Float32Array(10))).toThrow(expect.objectContaining({ code: 'HEARTH_ERR_MODEL_MISMATCH' }))
    model.dispose()
  })

  test('scores as u · tanh(E[h(i)] W + b) + β[h(i)] over the spec layout', async () => {
    const model = MfModel.create(SMALL_SPEC, seededUniform(2))
    const federated = initFederatedWeights(SMALL_SPEC, seededUniform(3))
    // Non-zero biases, so that a mix-up of item_bias and tower_bias would show.
    for (const { tensor, offset, size } of federatedLayout(SMALL_SPEC)) {
      if (tensor.name.endsWith('bias')) for (let i = 0; i < size; i++) federated[offset + i] = 0.01 * (i % 7) - 0.02
    }
    const user = Float32Array.from({ length: 8 }, (_, i) => 0.3 * Math.cos(i))
    model.setFederated(federated)
    model.setLocal(user)
    const items = ['movie:1', 'movie:2', 'book:9', 'café']
    const scores = await scoreBuckets(model, Int32Array.from(items, (id) => itemBucket(id, 256)))
    const expected = referenceScores(SMALL_SPEC, federated, user, items)
    scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i] as number, 5))
    model.dispose()
  })

  test('the lookup gradient is the gather gradient, summed over repeated rows', async () => {
    const table = tf.variable(tf.randomNormal([10, 3], 0, 1, 'float32', 5))
    const indices = tf.tensor1d([4, 1, 4, 9, 4], 'int32')
    const upstream = tf.randomNormal([5, 3], 0, 1, 'float32', 6)
    const ours = tf.variableGrads(() => tf.sum(tf.mul(lookupRows(table, indices), upstream)), [table])
    const reference = tf.variableGrads(() => tf.sum(tf.mul(tf.gather(table, indices), upstream)), [table])
    const a = await (ours.grads[table.name] as tf.Tensor).data()
    const b = await (reference.grads[table.name] as tf.Tensor).data()
    a.forEach((x, i) => expect(x).toBeCloseTo(b[i] as number, 6))
    tf.dispose([table, indices, upstream, ours.value, reference.value, ...Object.values(ours.grads), ...Object.values(reference.grads)])
  })

  test.each<OptimizerKind>(['sgd', 'adam'])('training with %s moves only the item rows it trained on', async (optimizer) => {
    const model = MfModel.create(SMALL_SPEC, seededUniform(4))
    const before = await model.readFederated()
    const examples = someExamples(12)
    const result = await fit(model, bucketData(examples), {
      epochs: 3,
      batchSize: 5,
      learningRate: 0.1,
      optimizer,
      trainable: 'all',
      negativesPerPositive: 0,
      uniform: seededUniform(5),
    })
    expect(result.steps).toBe(9)
    const after = await model.readFederated()
    const touched = examples.map((e) => e.bucket)
    expect(rowsChanged(before, after, SMALL_SPEC, 'item_embedding')).toEqual(touched)
    expect(rowsChanged(before, after, SMALL_SPEC, 'item_bias')).toEqual(touched)
    model.dispose()
  })

  test('feature columns are as wide as the item with the most tokens, and the width changes no score', async () => {
    const spec = mfSpec('features', { buckets: 256, dim: 8, features: { buckets: 64 } })
    const model = MfModel.create(spec, seededUniform(12))
    const encoding = itemEncoding(256, spec.options.features)
    const narrow = { item: 'b', features: { genre: ['drama'] } }
    const items = [{ item: 'a', features: { genre: ['comedy', 'drama', 'war'] } }, narrow, { item: 'c' }]
    const wide = encodeItems(items, encoding)
    expect(wide.tokens.length).toBe(3 * 3)
    expect(Array.from(wide.tokenWeights.subarray(3, 6))).toEqual([1, 0, 0])
    expect(encodeItems([narrow], encoding).tokens.length).toBe(1)
    // Empty slots add exactly 0 to x(i): b scores the same in a 3-wide and a 1-wide table.
    const together = await scoreItems(model, wide)
    const alone = await scoreItems(model, encodeItems([narrow], encoding))
    expect(together[1]).toBeCloseTo(alone[0] as number, 6)
    model.dispose()
  })

  test('reconstruction fits the user vector and leaves every federated weight alone', async () => {
    const model = MfModel.create(SMALL_SPEC, seededUniform(6))
    const federated = await model.readFederated()
    const user = await model.readLocal()
    const examples = bucketData(someExamples(30))
    const first = await reconstructUser(model, examples, { steps: 1, learningRate: 0.05, negativesPerPositive: 2, uniform: seededUniform(7) })
    const last = await reconstructUser(model, examples, { steps: 40, learningRate: 0.05, negativesPerPositive: 2, uniform: seededUniform(7) })
    expect(last.loss).toBeLessThan(first.loss)
    expect(await model.readFederated()).toEqual(federated)
    expect(await model.readLocal()).not.toEqual(user)
    model.dispose()
  })

  test('memory stays flat over repeated training, reconstruction and scoring', async () => {
    const model = MfModel.create(SMALL_SPEC, seededUniform(8))
    const examples = bucketData(someExamples(40))
    const counts: number[] = []
    for (let run = 0; run < 20; run++) {
      await fit(model, examples, { epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: run % 2 ? 'adam' : 'sgd', trainable: 'all', negativesPerPositive: 2, uniform: seededUniform(run) })
      await reconstructUser(model, examples, { steps: 3, learningRate: 0.05, negativesPerPositive: 2, uniform: seededUniform(run) })
      await scoreBuckets(model, Int32Array.from([1, 2, 3]))
      model.setFederated(await model.readFederated())
      counts.push(tf.memory().numTensors)
    }
    expect(new Set(counts).size).toBe(1)
    const held = tf.memory().numTensors
    model.dispose()
    expect(tf.memory().numTensors).toBe(held - SMALL_SPEC.tensors.length)
  })
})

describe('training examples', () => {
  const spec = mfSpec('examples', { buckets: 1024, dim: 2 })
  const bucket = (item: string): number => itemBucket(item, spec.options.buckets)

  const encoding = itemEncoding(spec.options.buckets, undefined)
  const examplesOf = (events: Parameters<typeof buildTrainingData>[0], max: number): { bucket: number; label: number; weight: number }[] => {
    const data = buildTrainingData(events, [], encoding, max)
    return data.examples.map((e) => ({ bucket: data.items.buckets[e.row] as number, label: e.label, weight: e.weight }))
  }

  test('sum the weights of an item’s events, most recent item first', () => {
    const examples = examplesOf(
      [
        { item: 'liked', kind: 'view', at: 1 },
        { item: 'liked', kind: 'like', at: 5 },
        { item: 'rejected', kind: 'view', at: 2 },
        { item: 'rejected', kind: 'dislike', at: 6 },
        { item: 'cancelled', kind: 'click', at: 3 },
        { item: 'cancelled', kind: 'dismiss', at: 4 },
        { item: 'binged', kind: 'purchase', at: 7 },
        { item: 'binged', kind: 'purchase', at: 8 },
      ],
      10,
    )
    expect(examples).toEqual([
      { bucket: bucket('binged'), label: 1, weight: MAX_EXAMPLE_WEIGHT },
      { bucket: bucket('rejected'), label: 0, weight: 0.75 },
      { bucket: bucket('liked'), label: 1, weight: 1.25 },
    ])
  })

  test('keep at most maxExamples, the most recent', () => {
    const events = Array.from({ length: 10 }, (_, i) => ({ item: `i${i}`, kind: 'like' as const, at: i }))
    expect(examplesOf(events, 3).map((e) => e.bucket)).toEqual(['i9', 'i8', 'i7'].map(bucket))
  })

  test('each positive brings its sampled negatives, never one of the user’s positives', () => {
    const data = bucketData([
      { bucket: 0, label: 1, weight: 0.5 },
      { bucket: 1, label: 0, weight: 1 },
      { bucket: 2, label: 1, weight: 2 },
    ])
    const sampler = new NegativeSampler(data, 4, 3, seededUniform(9))
    const batch = makeBatch(data, data.examples, sampler)
    expect(batch.items.buckets.length).toBe(3 + 2 * 3)
    expect([...batch.labels]).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0])
    expect([...batch.weights]).toEqual([0.5, 0.5, 0.5, 0.5, 1, 2, 2, 2, 2])
    expect(batch.weightSum).toBe(11)
    for (const row of [1, 2, 3, 6, 7, 8]) expect([1, 3]).toContain(batch.items.buckets[row])
  })
})
