/**
 * `serverStep`: which stored optimizer state a round resumes from, and what it hands back to
 * store with the new version.
 */
import { describe, expect, test } from 'vitest'
import { versionRecord } from '../../aggregator/models/weights.ts'
import { AdaptiveOptimizer } from '../../aggregator/rounds/adaptive-optimizer.ts'
import { FedAvg } from '../../aggregator/rounds/fedavg.ts'
import { serverStep } from '../../aggregator/rounds/server-step.ts'
import type { OptimizerStateRecord } from '../../aggregator/store/store.ts'
import type { ModelSpec } from '../../protocol/model-spec.ts'

// A model of two federated tensors, w (2 numbers) and b (1).
const spec: ModelSpec = {
  name: 'm',
  architecture: 'hearth-mf-v1',
  options: { buckets: 2, dim: 1 },
  tensors: [
    { name: 'w', shape: [2], federated: true, init: { kind: 'zeros' } },
    { name: 'u', shape: [1], federated: false, init: { kind: 'zeros' } },
    { name: 'b', shape: [1], federated: true, init: { kind: 'zeros' } },
  ],
}
const base = versionRecord('m', 4, Float32Array.from([0.5, -1, 2]), 9, 100)
const aggregate = { sum: Float64Array.from([0.3, -0.6, 0.09]), count: 3 }
const stored = (overrides: Partial<OptimizerStateRecord> = {}): OptimizerStateRecord => ({
  model: 'm',
  version: 4,
  optimizer: 'fedadam',
  rounds: 3,
  m: Float64Array.from([0.01, -0.02, 0.03]),
  v: Float64Array.from([0.001, 0.002, 0.0005]),
  ...overrides,
})

/** A store that holds at most `state`, and records what it was asked for. */
function storeWith(state: OptimizerStateRecord | undefined) {
  const asked: [string, number][] = []
  return {
    asked,
    getOptimizerState: async (model: string, version: number) => {
      asked.push([model, version])
      return state !== undefined && state.model === model && state.version === version ? state : undefined
    },
  }
}

describe('serverStep', () => {
  test('FedAvg has no state: nothing is read or returned', async () => {
    const store = storeWith(stored())
    const step = await serverStep(new FedAvg(), store, spec, base, aggregate)
    expect(Array.from(step.weights)).toEqual(Array.from(new FedAvg().step(base.weights, aggregate)))
    expect(step.state).toBeUndefined()
    expect(store.asked).toEqual([])
  })

  test("an adaptive optimizer resumes from the base version's state and returns the next one for the new version", async () => {
    const template = new AdaptiveOptimizer('fedadam')
    const store = storeWith(stored())
    const step = await serverStep(template, store, spec, base, aggregate)
    const expected = new AdaptiveOptimizer('fedadam', {}, stored())
    expect(Array.from(step.weights)).toEqual(Array.from(expected.step(base.weights, aggregate)))
    expect(step.state).toEqual({ model: 'm', version: 5, optimizer: 'fedadam', ...expected.state() })
    expect(step.state?.rounds).toBe(4)
    expect(store.asked).toEqual([['m', 4]])
    // The configured optimizer is a template: it never steps, so models and rounds cannot share moments.
    expect(template.state()).toBeNull()
  })

  test('state of another optimizer, of another length, or none at all: the moments start afresh', async () => {
    const fresh = new AdaptiveOptimizer('fedadam').step(base.weights, aggregate)
    for (const state of [undefined, stored({ optimizer: 'fedyogi' }), stored({ m: new Float64Array(2), v: new Float64Array(2) })]) {
      const step = await serverStep(new AdaptiveOptimizer('fedadam'), storeWith(state), spec, base, aggregate)
      expect(Array.from(step.weights)).toEqual(Array.from(fresh))
      expect(step.state?.rounds).toBe(1)
    }
    const resumed = await serverStep(new AdaptiveOptimizer('fedadam'), storeWith(stored()), spec, base, aggregate)
    expect(Array.from(resumed.weights)).not.toEqual(Array.from(fresh))
  })

  test("per-tensor rates are resolved against the model's layout: b steps at half the rate, w as before", async () => {
    const plain = (await serverStep(new AdaptiveOptimizer('fedadam'), storeWith(stored()), spec, base, aggregate)).weights
    const halved = (await serverStep(new AdaptiveOptimizer('fedadam', { tensorLearningRates: { b: 0.5 } }), storeWith(stored()), spec, base, aggregate)).weights
    expect(Array.from(halved.subarray(0, 2))).toEqual(Array.from(plain.subarray(0, 2)))
    // b is the third federated number (the local u takes no place in the vector); its step halves.
    const full = (plain[2] as number) - 2
    expect(halved[2]).toBeCloseTo(2 + full / 2, 6)
    await expect(serverStep(new AdaptiveOptimizer('fedadam', { tensorLearningRates: { u: 0.5 } }), storeWith(stored()), spec, base, aggregate)).rejects.toMatchObject({
      code: 'HEARTH_ERR_INVALID_CONFIG',
      message: expect.stringContaining('"u"'),
    })
  })
})
