/**
 * `rank()` through the worker API: what it returns is true to the computation.
 * - reasons: a `similar` reason names an item the user engaged with, the one nearest in the
 *   model's item space, and is given exactly when the personal term lifted the item more than
 *   the prior did (checked against a plain JavaScript reference of the model);
 * - a planted preference is learned and ranks unseen items of the liked category first;
 * - cold start: the app's order without a model, the prior without personal data;
 * - sensitive features without consent are never read: their input tensor is zero, and the
 *   scores do not depend on them;
 * - the columns the page receives (`rankColumns`, transferred) unpack to exactly `rank()`'s
 *   result; a repeated candidate set reuses the last computation only until the model or the
 *   history changes; the decision is stored after the reply, and never lost.
 */
import { wrap } from 'comlink'
import * as tf from '../../worker/tf.ts'
import { afterEach, beforeAll, describe, expect, test } from 'vitest'
import type { EventKind, InteractionEvent } from '../../protocol/events.ts'
import { federatedLayout, initFederatedWeights, mfSpec } from '../../protocol/model-spec.ts'
import type { ModelSpec } from '../../protocol/model-spec.ts'
import { withheldFeatures } from '../../protocol/personal-data.ts'
import { unpackRanking } from '../../protocol/ranking.ts'
import type { DecisionRecord, RankColumns, RankedItem } from '../../protocol/ranking.ts'
import type { HearthWorkerApi } from '../../worker/api.ts'
import { startBackend } from '../../worker/backend.ts'
import { createWorkerCore } from '../../worker/core.ts'
import type { WorkerCoreOptions } from '../../worker/core.ts'
import { exposeWorkerApi } from '../../worker/expose.ts'
import { itemTensors } from '../../worker/model/hearth-model.ts'
import { itemBucket } from '../../worker/model/hash.ts'
import { encodeItems, withWithheld } from '../../worker/model/item-encoding.ts'
import { MfModel } from '../../worker/model/mf-model.ts'
import { Ranker } from '../../worker/rank/ranker.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { cosine, distinctItems, referenceItemSide, seededUniform, SMALL_SPEC } from './helpers.ts'

const cores: HearthWorkerApi[] = []
afterEach(async () => {
  for (const core of cores.splice(0)) await core.close()
})

beforeAll(async () => {
  await startBackend(['cpu'])
})

async function startCore(spec: ModelSpec = SMALL_SPEC, options: WorkerCoreOptions = {}, personalization = {}): Promise<HearthWorkerApi> {
  const core = createWorkerCore({ seed: 7, openStore: async () => new MemoryDeviceStore(), ...options })
  cores.push(core)
  await core.init({ dbName: 'rank', spec, backends: ['cpu'], personalization })
  return core
}

const [A = [], B = [], C = []] = distinctItems(['a', 'b', 'c'], 20, SMALL_SPEC.options.buckets)
const NONE = { exploration: { method: 'none' } } as const

describe('reasons are true to the scores', () => {
  test('a similar reason names the engaged item nearest in item space, exactly when the personal term lifted the item more', async () => {
    const core = await startCore()
    const global = initFederatedWeights(SMALL_SPEC, seededUniform(11))
    // Plant priors on a few candidates, so that both kinds of reasons occur.
    const beta = federatedLayout(SMALL_SPEC).find((s) => s.tensor.name === 'item_bias')?.offset ?? -1
    for (const item of C.slice(0, 5)) global[beta + itemBucket(item, 256)] = 1.5
    const events: InteractionEvent[] = [
      ...A.slice(0, 8).map((item, i) => ({ item, kind: (i % 2 ? 'like' : 'purchase') as EventKind, at: 100 + i })),
      { item: A[8] as string, kind: 'view', at: 120 },
      ...B.slice(0, 3).map((item, i) => ({ item, kind: 'dislike' as const, at: 130 + i })),
    ]
    await core.record(events)
    await core.installGlobal(1, global)
    const candidates = [...C, ...A.slice(10), ...B.slice(10)]
    const { items, decision, modelVersion } = await core.rank(candidates, { surface: 'home' }, NONE)
    expect(modelVersion).toBe(1)
    expect(decision).toEqual(expect.any(String))
    expect(items.map((i) => i.item).sort()).toEqual([...candidates].sort())

    // The reference: serving weights = the global; the user vector = the reconstructed one.
    const exported = await core.exportData()
    const user = exported.model?.localParameters[0]?.values ?? []
    expect(user).toHaveLength(8)
    const engaged = [...A.slice(0, 9)]
    const engagement = new Map(engaged.map((item, i) => [item, i === 8 ? 'view' : i % 2 ? 'like' : 'purchase']))
    const side = referenceItemSide(SMALL_SPEC, global, candidates)
    const history = referenceItemSide(SMALL_SPEC, global, engaged).vectors
    const personal = side.vectors.map((t) => t.reduce((s, x, k) => s + x * (user[k] as number), 0))
    const meanPersonal = personal.reduce((a, b) => a + b, 0) / personal.length
    const meanPrior = side.prior.reduce((a, b) => a + b, 0) / side.prior.length
    const at = new Map(candidates.map((item, i) => [item, i]))

    let previous = Infinity
    const kinds = new Set<string>()
    for (const ranked of items as RankedItem[]) {
      const i = at.get(ranked.item) as number
      expect(ranked.score).toBeCloseTo((personal[i] as number) + (side.prior[i] as number), 4)
      expect(ranked.score).toBeLessThanOrEqual(previous + 1e-6)
      previous = ranked.score
      expect(ranked.propensity).toBe(1)
      kinds.add(ranked.reason.kind)
      const personalLift = (personal[i] as number) - meanPersonal
      const priorLift = (side.prior[i] as number) - meanPrior
      if (ranked.reason.kind === 'similar') {
        expect(engaged).toContain(ranked.reason.item)
        expect(ranked.reason.engagement).toBe(engagement.get(ranked.reason.item))
        const similarities = history.map((h) => cosine(side.vectors[i] as number[], h))
        const best = Math.max(...similarities)
        expect(similarities[engaged.indexOf(ranked.reason.item)]).toBeCloseTo(best, 4)
        expect(ranked.reason.similarity).toBeCloseTo(best, 2)
        expect(ranked.reason.text).toContain(ranked.reason.item)
        expect(personalLift).toBeGreaterThanOrEqual(priorLift - 1e-5)
      } else {
        expect(ranked.reason).toEqual({ kind: 'popular', text: 'Popular among all users' })
        expect(personalLift).toBeLessThan(priorLift + 1e-5)
      }
    }
    expect(kinds).toEqual(new Set(['similar', 'popular']))
    // The decision log holds the same ranking.
    const [logged] = await core.decisions(1)
    expect(logged?.id).toBe(decision)
    expect(logged?.order.map((k) => candidates[k])).toEqual(items.map((i) => i.item))
    expect(logged?.context).toEqual({ surface: 'home' })
    expect(logged?.reasons).toEqual(items.slice(0, 20).map((i) => i.reason))
  })
})

describe('cold start', () => {
  test('without a model the app’s order is kept, and logged', async () => {
    const core = await startCore()
    const { items, decision, modelVersion, exploration } = await core.rank(['z', 'y', { item: 'x', features: { genre: 'jazz' } }])
    expect(modelVersion).toBeNull()
    expect(exploration).toBe('none')
    expect(items).toEqual(['z', 'y', 'x'].map((item) => ({ item, score: 0, propensity: 1, reason: { kind: 'app-order', why: 'no-model', text: 'In the app’s order: no model yet' } })))
    expect((await core.decisions())[0]?.id).toBe(decision)
  })

  test('with a model but no personal data, the global prior ranks; ties keep the app’s order', async () => {
    const core = await startCore()
    const global = initFederatedWeights(SMALL_SPEC, seededUniform(12))
    const beta = federatedLayout(SMALL_SPEC).find((s) => s.tensor.name === 'item_bias')?.offset ?? -1
    const [low, high, tieA, tieB] = C as [string, string, string, string]
    global[beta + itemBucket(low, 256)] = -1
    global[beta + itemBucket(high, 256)] = 2
    global[beta + itemBucket(tieA, 256)] = 0.5
    global[beta + itemBucket(tieB, 256)] = 0.5
    await core.installGlobal(1, global)
    const { items } = await core.rank([low, tieB, high, tieA], undefined, NONE)
    expect(items.map((i) => i.item)).toEqual([high, tieB, tieA, low])
    expect(items.map((i) => i.score)).toEqual([2, 0.5, 0.5, -1])
    expect(items.every((i) => i.reason.kind === 'popular')).toBe(true)
  })
})

describe('a planted preference', () => {
  test('after training on the device, unseen items of the liked category rank first', async () => {
    const spec = mfSpec('planted', { buckets: 256, dim: 8, features: { buckets: 64 } })
    const core = await startCore(spec, { negativesPerPositive: 3 })
    await core.installGlobal(1, initFederatedWeights(spec, seededUniform(13)))
    const item = (id: string): { item: string; features: { category: string } } => ({ item: id, features: { category: id.startsWith('a') ? 'A' : 'B' } })
    const [seenA, unseenA] = [A.slice(0, 10), A.slice(10)]
    const [seenB, shownB, unseenB] = [B.slice(0, 5), B.slice(5, 10), B.slice(10)]
    // The app shows part of its catalog (the device now knows these items); the user engages
    // with A and dismisses some B. Unseen items of both categories are held out.
    await core.rank([...seenA, ...seenB, ...shownB].map(item), undefined, { log: true })
    await core.record([
      ...seenA.map((id, at) => ({ ...item(id), kind: (at % 3 ? 'like' : 'click') as EventKind, at: 1000 + at })),
      ...seenB.map((id, at) => ({ ...item(id), kind: 'dismiss' as const, at: 2000 + at })),
    ])
    // The app lists B first: without a preference, that order stays.
    const before = await core.rank([...unseenB, ...unseenA].map(item), undefined, NONE)
    const result = await core.trainLocal({ epochs: 10, batchSize: 8, learningRate: 0.02, maxExamples: 100 })
    expect(result.steps).toBeGreaterThan(0)
    const after = await core.rank([...unseenB, ...unseenA].map(item), undefined, NONE)
    const precision = (items: readonly RankedItem[]): number => items.slice(0, 10).filter((i) => unseenA.includes(i.item)).length / 10
    expect(precision(before.items)).toBeLessThan(0.9)
    expect(precision(after.items)).toBeGreaterThanOrEqual(0.9)
    // Explained by what the user engaged with.
    const similar = after.items.slice(0, 10).filter((i) => i.reason.kind === 'similar')
    expect(similar.length).toBeGreaterThan(0)
    for (const { reason } of similar) if (reason.kind === 'similar') expect(seenA).toContain(reason.item)
  })
})

describe('sensitive features without consent', () => {
  const spec = mfSpec('sensitive', { buckets: 256, dim: 8, features: { buckets: 64, numeric: ['price'] } })
  const sensitiveFeatures = { topic: 'health', price: 'money' }
  const withTopic = { item: 'article', features: { topic: 'health', genre: 'news', price: 3 } }
  const without = { item: 'article', features: { genre: 'news' } }

  test('are zero in the model’s input tensors, and read once consent is given', async () => {
    const model = MfModel.create(spec, seededUniform(14))
    const read = (consent: Record<string, boolean>): { tokens: number[]; weights: number[]; numeric: number[] } =>
      tf.tidy(() => {
        const encoding = withWithheld(model.encoding, withheldFeatures(sensitiveFeatures, consent))
        const tensors = itemTensors(encodeItems([withTopic, without], encoding))
        return {
          tokens: Array.from(tensors.tokens?.dataSync() ?? []),
          weights: Array.from(tensors.tokenWeights?.dataSync() ?? []),
          numeric: Array.from(tensors.numeric?.dataSync() ?? []),
        }
      })
    const off = read({})
    const K = off.tokens.length / 2
    // Without consent the item with a topic and a price reads exactly as the item without them.
    expect(off.tokens.slice(0, K)).toEqual(off.tokens.slice(K))
    expect(off.weights.slice(0, K)).toEqual(off.weights.slice(K))
    expect(off.weights.filter((w) => w > 0)).toEqual([1, 1]) // one token each: genre
    expect(off.numeric).toEqual([0, 0])
    const on = read({ health: true, money: true })
    // Token slots per item are as many as the call's items need (item-encoding.ts), so K differs.
    expect(on.weights.slice(0, on.weights.length / 2).filter((w) => w > 0)).toEqual([0.5, 0.5]) // genre and topic
    expect(on.numeric).toEqual([3, 0])
    model.dispose()
  })

  test('do not change scores, are not stored, and are erased when consent is revoked', async () => {
    const core = await startCore(spec, {}, { sensitiveFeatures })
    // Some history and a model, so that scores have a personal term.
    await core.record([{ item: 'w', kind: 'like', at: 0, features: { genre: 'news' } }])
    await core.installGlobal(1, initFederatedWeights(spec, seededUniform(15)))
    const scoresOf = async (): Promise<number[]> => {
      const { items } = await core.rank(
        [
          { item: 'x', features: { topic: 'health', genre: 'news' } },
          { item: 'y', features: { topic: 'sports', genre: 'news', price: 10 } },
        ],
        undefined,
        { ...NONE, log: false },
      )
      return ['x', 'y'].map((id) => items.find((i) => i.item === id)?.score ?? NaN)
    }
    const [x, y] = await scoresOf()
    // x and y differ only in sensitive features (and their hashed ids): compare each with itself renamed.
    const { items: plain } = await core.rank([{ item: 'x', features: { genre: 'news' } }, { item: 'y', features: { genre: 'news' } }], undefined, { ...NONE, log: false })
    expect(plain.find((i) => i.item === 'x')?.score).toBe(x)
    expect(plain.find((i) => i.item === 'y')?.score).toBe(y)

    await core.record([{ item: 'x', kind: 'like', at: 1, features: { topic: 'health', genre: 'news' } }])
    expect((await core.exportData()).events.at(-1)).toEqual({ item: 'x', kind: 'like', at: 1, features: { genre: 'news' } })
    await core.setConsent('health', true)
    const [xConsented] = await scoresOf()
    expect(xConsented).not.toBe(x)
    await core.record([{ item: 'x', kind: 'like', at: 2, features: { topic: 'health', genre: 'news' } }])
    expect((await core.exportData()).events.at(-1)?.features).toEqual({ topic: 'health', genre: 'news' })
    expect((await core.settings()).consent).toEqual({ health: true })
    await core.setConsent('health', false)
    expect((await core.exportData()).events.map((e) => e.features)).toEqual([{ genre: 'news' }, { genre: 'news' }, { genre: 'news' }])
    // Decisions never keep sensitive features.
    await core.rank([{ item: 'z', features: { topic: 'health', genre: 'news' } }])
    expect((await core.decisions(1))[0]?.candidates).toEqual([{ item: 'z', features: { genre: 'news' } }])
  })
})

describe('columns to the page', () => {
  async function personalCore(): Promise<HearthWorkerApi> {
    const core = await startCore()
    await core.record(A.slice(0, 6).map((item, at) => ({ item, kind: 'like' as const, at })))
    await core.installGlobal(1, initFederatedWeights(SMALL_SPEC, seededUniform(21)))
    return core
  }

  test('rankColumns over comlink: buffers transferred, unpacked to exactly what rank() returns', async () => {
    const core = await personalCore()
    let returned: RankColumns | undefined
    // Only rankColumns goes through the channel; the spy keeps what the core handed to comlink.
    const spied = { rankColumns: async (...args: Parameters<HearthWorkerApi['rankColumns']>) => (returned = await core.rankColumns(...args)) } as Partial<HearthWorkerApi> as HearthWorkerApi
    const { port1, port2 } = new MessageChannel()
    try {
      exposeWorkerApi(spied, port1)
      const remote = wrap<HearthWorkerApi>(port2)
      const candidates = [...C, ...A.slice(6), { item: 'x-with-features', features: { genre: 'jazz' } }]
      const columns = await remote.rankColumns(candidates, undefined, { ...NONE, log: false })
      expect(returned?.order.byteLength).toBe(0) // moved out of the worker, not copied
      expect(returned?.scores.byteLength).toBe(0)
      expect(columns.order).toBeInstanceOf(Int32Array)
      expect(columns.reasonTable.length).toBeLessThanOrEqual(candidates.length)
      const direct = await core.rank(candidates, undefined, { ...NONE, log: false })
      expect(unpackRanking(columns, candidates)).toEqual(direct)
      expect(new Set(direct.items.map((i) => i.reason.kind))).toEqual(new Set(['similar', 'popular']))
    } finally {
      port1.close()
      port2.close()
    }
  })

  test('a repeated candidate set reuses the last computation until the model or the history changes', async () => {
    const core = await personalCore()
    const candidates = [...C, ...B]
    const scoresNow = async (): Promise<void> => {
      const { items } = await core.rank(candidates, undefined, { ...NONE, log: false })
      const fresh = await core.score(items.map((i) => i.item))
      items.forEach((item, k) => expect(item.score).toBeCloseTo(fresh[k] as number, 5))
    }
    const first = await core.rank(candidates, undefined, { ...NONE, log: false })
    expect(await core.rank(candidates, undefined, { ...NONE, log: false })).toEqual(first)
    await scoresNow()
    await core.installGlobal(2, initFederatedWeights(SMALL_SPEC, seededUniform(22)))
    await scoresNow()
    await core.trainLocal({ epochs: 2, batchSize: 4, learningRate: 0.1, maxExamples: 50 })
    await scoresNow()
    // A new engaged item: the history (and so the nearest engaged items) is rebuilt.
    const liked = C[0] as string
    await core.record([{ item: liked, kind: 'purchase', at: 50 }])
    const after = await core.rank(candidates, undefined, { ...NONE, log: false })
    const own = after.items.find((i) => i.item === liked)
    if (own?.reason.kind === 'similar') expect(own.reason).toMatchObject({ item: liked, similarity: 1 })
    else expect(own?.reason.kind).toBe('popular')
  })

  test('the ranker hands back its last computation for an equal encoding, and drops it on invalidate', async () => {
    const model = MfModel.create(SMALL_SPEC, seededUniform(23))
    const ranker = new Ranker(model)
    try {
      const encode = (): ReturnType<typeof encodeItems> => encodeItems(C.map((item) => ({ item })), model.encoding)
      const first = await ranker.compute(encode(), false)
      expect(await ranker.compute(encode(), false)).toBe(first)
      expect(await ranker.compute(encodeItems(B.map((item) => ({ item })), model.encoding), false)).not.toBe(first)
      const again = await ranker.compute(encode(), false)
      ranker.invalidate()
      const recomputed = await ranker.compute(encode(), false)
      expect(recomputed).not.toBe(again)
      expect(recomputed.scores).toEqual(again.scores)
    } finally {
      ranker.dispose()
      model.dispose()
    }
  })

  test('epsilon-greedy propensities by position: each slot’s distribution sums to one, exploring items say so', async () => {
    const core = await personalCore()
    const candidates = [...C.slice(0, 8)]
    const epsilon = 0.5
    for (let call = 0; call < 10; call++) {
      const { items } = await core.rank(candidates, undefined, { exploration: { method: 'epsilon-greedy', epsilon, slots: 3 }, log: false })
      items.forEach((item, p) => {
        const remaining = candidates.length - p
        if (p >= 3) expect(item.propensity).toBe(1)
        else if (item.reason.kind === 'exploring') expect(item.propensity).toBe(epsilon / remaining)
        else expect(item.propensity).toBe(1 - epsilon + epsilon / remaining)
        // The greedy choice and the others of the slot: 1 − ε + ε/|R| + (|R| − 1)·ε/|R| = 1.
        if (p < 3) expect(1 - epsilon + epsilon / remaining + (remaining - 1) * (epsilon / remaining)).toBeCloseTo(1, 12)
      })
    }
  })

  test('Thompson sampling through the packed read: a permutation, propensities shares of the draws', async () => {
    const core = await personalCore()
    const candidates = [...C, ...B]
    const samples = 50
    for (let call = 0; call < 3; call++) {
      const { items, exploration } = await core.rank(candidates, undefined, { exploration: { method: 'thompson', samples, slots: 3 }, log: false })
      expect(exploration).toBe('thompson')
      expect(items.map((i) => i.item).sort()).toEqual([...candidates].sort())
      items.forEach((item, p) => {
        if (p >= 3) expect(item.propensity).toBe(1)
        else {
          // The share of the samples + 1 draws whose best remaining candidate is this item.
          expect(item.propensity).toBeGreaterThan(0)
          expect(item.propensity * (samples + 1)).toBeCloseTo(Math.round(item.propensity * (samples + 1)), 9)
        }
      })
    }
  })

  test('the decision is stored after the reply, and close() still stores it', async () => {
    class CountingStore extends MemoryDeviceStore {
      readonly stored: DecisionRecord[] = []
      override async putDecision(decision: DecisionRecord): Promise<void> {
        this.stored.push(decision)
        return super.putDecision(decision)
      }
    }
    const store = new CountingStore()
    const core = createWorkerCore({ seed: 7, openStore: async () => store })
    await core.init({ dbName: 'rank', spec: SMALL_SPEC, backends: ['cpu'] })
    await core.installGlobal(1, initFederatedWeights(SMALL_SPEC, seededUniform(24)))
    const { decision, items } = await core.rank(C, { surface: 'home' })
    expect(store.stored).toEqual([]) // not yet: the reply went first
    await core.close()
    expect(store.stored.map((d) => d.id)).toEqual([decision])
    const [logged] = store.stored
    expect(logged?.order.map((k) => C[k])).toEqual(items.map((i) => i.item))
    expect(logged?.scores).toEqual(items.map((i) => i.score))
    expect(logged?.propensities).toEqual(items.map((i) => i.propensity))
    expect(logged?.reasons).toEqual(items.slice(0, 20).map((i) => i.reason))
  })
})

describe('argument checks', () => {
  test('bad candidates, context and options name the argument', async () => {
    const core = await startCore()
    const invalid = (fragment: string): unknown => expect.objectContaining({ code: 'HEARTH_ERR_INVALID_ARGUMENT', message: expect.stringContaining(fragment) })
    await expect(core.rank('a' as unknown as string[])).rejects.toEqual(invalid('candidates must be an array'))
    await expect(core.rank(['a', 'a'])).rejects.toEqual(invalid('candidates[1] repeats item'))
    await expect(core.rank([{ item: '' }])).rejects.toEqual(invalid('candidates[0]'))
    await expect(core.rank([{ item: 'a', features: { 'bad key': 1 } }])).rejects.toEqual(invalid('candidates[0].features key'))
    await expect(core.rank(['a'], { nested: {} } as never)).rejects.toEqual(invalid('context.nested'))
    await expect(core.rank(['a'], undefined, { exploration: { method: 'epsilon-greedy', epsilon: 2 } })).rejects.toEqual(invalid('options.exploration.epsilon'))
    await expect(core.rank(['a'], undefined, { exploration: { method: 'ucb' } as never })).rejects.toEqual(invalid('options.exploration.method'))
    await expect(core.setConsent('bad category!', true)).rejects.toEqual(invalid('category'))
  })
})
