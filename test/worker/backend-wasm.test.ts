/**
 * The wasm backend in Node: `@tensorflow/tfjs-backend-wasm`'s Node build reads its `.wasm`
 * from `node_modules/@tensorflow/tfjs-backend-wasm/dist/` when no path is set. The worker core
 * runs on it unchanged, and agrees with the cpu backend.
 */
import * as tf from '../../worker/tf.ts'
import { describe, expect, test } from 'vitest'
import { federatedLayout, initFederatedWeights } from '../../protocol/model-spec.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { itemBucket } from '../../worker/model/hash.ts'
import { MfModel } from '../../worker/model/mf-model.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { scoreBuckets, seededUniform, SMALL_SPEC } from './helpers.ts'

describe('the wasm backend in Node', () => {
  test('starts, trains a round that touches only its buckets, and scores like cpu', async () => {
    const core = createWorkerCore({ seed: 5, negativesPerPositive: 0, openStore: async () => new MemoryDeviceStore() })
    expect(await core.init({ dbName: 'wasm', spec: SMALL_SPEC })).toEqual({ backend: 'wasm', modelVersion: null })
    expect(tf.getBackend()).toBe('wasm')
    const items = ['x', 'y', 'z']
    await core.record(items.map((item, at) => ({ item, kind: 'like' as const, at })))
    const global = initFederatedWeights(SMALL_SPEC, seededUniform(1))
    await core.installGlobal(1, global)
    const { delta } = await core.trainRound({ roundId: 1, baseVersion: 1, globalWeights: global, plan: { epochs: 2, batchSize: 2, learningRate: 0.5, maxExamples: 10 } })
    const embedding = federatedLayout(SMALL_SPEC)[0]
    if (embedding === undefined) throw new Error('layout')
    const own = new Set(items.map((item) => itemBucket(item, 256)))
    for (let bucket = 0; bucket < 256; bucket++) {
      const row = delta.subarray(embedding.offset + bucket * 8, embedding.offset + bucket * 8 + 8)
      expect(row.some((x) => x !== 0)).toBe(own.has(bucket))
    }
    await core.close()

    const model = MfModel.create(SMALL_SPEC, seededUniform(2))
    const buckets = Int32Array.from([1, 50, 200])
    const onWasm = await scoreBuckets(model, buckets)
    await tf.setBackend('cpu')
    const onCpu = await scoreBuckets(model, buckets)
    onWasm.forEach((s, i) => expect(s).toBeCloseTo(onCpu[i] as number, 5))
    model.dispose()
  })
})
