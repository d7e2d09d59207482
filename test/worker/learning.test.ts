/**
 * The model learns a planted preference, end to end through the worker API: devices whose users
 * like category A (or B) train in federated rounds (plain FedAvg of their deltas, as an
 * aggregator without noise would), and afterwards each ranks the A (or B) items it never
 * touched above the other category's. A newcomer who took no part in any round gets the same
 * from reconstruction alone (Singhal et al. 2021, §5: unseen users).
 */
import { describe, expect, test } from 'vitest'
import type { InteractionEvent } from '../../protocol/events.ts'
import type { TrainingPlan } from '../../protocol/messages.ts'
import type { HearthWorkerApi } from '../../worker/api.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { MfModel } from '../../worker/model/mf-model.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { distinctItems, seededUniform, SMALL_SPEC } from './helpers.ts'

const [A = [], B = []] = distinctItems(['a', 'b'], 30, SMALL_SPEC.options.buckets)
const PLAN: TrainingPlan = { epochs: 2, batchSize: 16, learningRate: 1.5, maxExamples: 500 }
const ROUNDS = 10
const USERS = 12

interface Device {
  readonly core: HearthWorkerApi
  readonly likesA: boolean
  /** Items of each category this user never touched. */
  readonly heldOut: { readonly liked: string[]; readonly other: string[] }
}

async function device(seed: number, likesA: boolean, positives: number): Promise<Device> {
  const uniform = seededUniform(1000 + seed)
  const [mine, theirs] = likesA ? [A, B] : [B, A]
  const touched = new Set<string>()
  const pick = (items: string[]): string => {
    const item = items[Math.floor(uniform() * items.length)] as string
    touched.add(item)
    return item
  }
  const events: InteractionEvent[] = []
  for (let i = 0; i < positives; i++) events.push({ item: pick(mine), kind: uniform() < 0.5 ? 'view' : 'like', at: i })
  for (let i = 0; i < positives / 4; i++) events.push({ item: pick(theirs), kind: 'dismiss', at: positives + i })
  const core = createWorkerCore({ seed, openStore: async () => new MemoryDeviceStore() })
  await core.init({ dbName: `user-${seed}`, spec: SMALL_SPEC, backends: ['cpu'] })
  await core.record(events)
  return { core, likesA, heldOut: { liked: mine.filter((i) => !touched.has(i)), other: theirs.filter((i) => !touched.has(i)) } }
}

/** Share of (held-out liked, held-out other) pairs ranked the right way: a pairwise AUC. */
async function heldOutAuc({ core, heldOut }: Device): Promise<number> {
  const scores = await core.score([...heldOut.liked, ...heldOut.other])
  const liked = scores.subarray(0, heldOut.liked.length)
  const other = scores.subarray(heldOut.liked.length)
  let right = 0
  for (const x of liked) for (const y of other) right += x > y ? 1 : x === y ? 0.5 : 0
  return right / (liked.length * other.length)
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

describe('federated training on a planted preference', () => {
  test('devices rank the items of their category they never saw above the others', { timeout: 60_000 }, async () => {
    const devices = await Promise.all(Array.from({ length: USERS }, (_, u) => device(u + 1, u % 2 === 0, 16)))
    const initial = MfModel.create(SMALL_SPEC, seededUniform(42))
    let global = await initial.readFederated()
    initial.dispose()
    for (const { core } of devices) await core.installGlobal(0, global)
    const before = mean(await Promise.all(devices.map(heldOutAuc)))

    for (let round = 1; round <= ROUNDS; round++) {
      const next = Float32Array.from(global)
      for (const { core } of devices) {
        const { delta } = await core.trainRound({ roundId: round, baseVersion: round - 1, globalWeights: global, plan: PLAN })
        for (let i = 0; i < next.length; i++) next[i] = (next[i] as number) + (delta[i] as number) / USERS
      }
      global = next
      for (const { core } of devices) await core.installGlobal(round, global)
    }

    const after = await Promise.all(devices.map(heldOutAuc))
    expect(before).toBeGreaterThan(0.3)
    expect(before).toBeLessThan(0.7)
    expect(mean(after)).toBeGreaterThan(0.85)
    for (const auc of after) expect(auc).toBeGreaterThan(0.6)

    // A newcomer: a handful of A views and likes, no rounds, only the published model and reconstruction.
    const newcomer = await device(99, true, 8)
    await newcomer.core.installGlobal(ROUNDS, global)
    expect(await heldOutAuc(newcomer)).toBeGreaterThan(0.8)

    for (const { core } of [...devices, newcomer]) await core.close()
  })
})
