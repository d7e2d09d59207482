/**
 * The worker API over a `MessageChannel` with comlink, as the page will use it (STYLE.md #7:
 * comlink's own tests do this before a real Worker). Same code path as `entry.ts`, minus `self`.
 */
import { transfer, wrap } from 'comlink'
import type { Remote } from 'comlink'
import { afterEach, describe, expect, test } from 'vitest'
import { errorFromBody } from '../../protocol/errors.ts'
import { federatedLength, initFederatedWeights } from '../../protocol/model-spec.ts'
import type { HearthWorkerApi, RoundTrainingResult } from '../../worker/api.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { exposeWorkerApi } from '../../worker/expose.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { seededUniform, SMALL_SPEC } from './helpers.ts'

const N = federatedLength(SMALL_SPEC)
const ports: MessagePort[] = []

afterEach(() => {
  for (const port of ports.splice(0)) port.close()
})

/** The core behind a channel, plus what the core returned (to see transfers detach it). */
function connect(): { remote: Remote<HearthWorkerApi>; returned: { scores?: Float32Array; round?: RoundTrainingResult } } {
  const core = createWorkerCore({ seed: 3, openStore: async () => new MemoryDeviceStore() })
  const returned: { scores?: Float32Array; round?: RoundTrainingResult } = {}
  const spied: HearthWorkerApi = {
    ...Object.fromEntries((['init', 'record', 'stats', 'installGlobal', 'trainLocal', 'noteRound', 'close'] as const).map((m) => [m, core[m].bind(core)])),
    score: async (items) => (returned.scores = await core.score(items)),
    trainRound: async (request) => (returned.round = await core.trainRound(request)),
  } as HearthWorkerApi
  const { port1, port2 } = new MessageChannel()
  ports.push(port1, port2)
  exposeWorkerApi(spied, port1)
  return { remote: wrap<HearthWorkerApi>(port2), returned }
}

describe('the worker API over comlink', () => {
  test('works end to end and moves big vectors instead of copying them', async () => {
    const { remote, returned } = connect()
    expect(await remote.init({ dbName: 'channel', spec: SMALL_SPEC, backends: ['cpu'] })).toEqual({ backend: 'cpu', modelVersion: null })
    await remote.record([
      { item: 'a', kind: 'like', at: 1 },
      { item: 'b', kind: 'dislike', at: 2, context: { surface: 'home' } },
    ])

    const global = initFederatedWeights(SMALL_SPEC, seededUniform(1))
    const sent = global.slice()
    await remote.installGlobal(1, transfer(sent, [sent.buffer]))
    expect(sent.byteLength).toBe(0) // the page's copy was moved to the worker

    const result = await remote.trainRound({ roundId: 4, baseVersion: 1, globalWeights: global, plan: { epochs: 1, batchSize: 4, learningRate: 0.5, maxExamples: 10 } })
    expect(result.delta).toBeInstanceOf(Float32Array)
    expect(result.delta.length).toBe(N)
    expect(result.delta.some((x) => x !== 0)).toBe(true)
    expect(result).toMatchObject({ roundId: 4, examples: 2 })
    expect(returned.round?.delta.byteLength).toBe(0) // transferred out of the worker

    const scores = await remote.score(['a', 'b', 'c'])
    expect(scores).toBeInstanceOf(Float32Array)
    expect(scores.length).toBe(3)
    expect(returned.scores?.byteLength).toBe(0)

    await remote.noteRound({ roundId: 4, model: 'test', at: 5, elements: N })
    expect(await remote.stats()).toMatchObject({ events: 2, modelVersion: 1, roundsJoined: 1 })
    await remote.close()
  })

  test('errors arrive with their catalogue code', async () => {
    const { remote } = connect()
    const notInitialized = await remote.score(['a']).catch((e: unknown) => e)
    expect(notInitialized).toMatchObject({ code: 'HEARTH_ERR_NOT_INITIALIZED', statusCode: 500, name: 'HearthError' })
    await remote.init({ dbName: 'channel', spec: SMALL_SPEC, backends: ['cpu'] })
    const mismatch = await remote.installGlobal(1, new Float32Array(3)).catch((e: unknown) => e)
    expect(mismatch).toBeInstanceOf(Error)
    expect(errorFromBody(mismatch as { code: unknown; message: unknown })).toMatchObject({
      code: 'HEARTH_ERR_MODEL_MISMATCH',
      message: expect.stringMatching(new RegExp(`has ${N} federated weights, got 3`)),
    })
    await remote.close()
  })
})
