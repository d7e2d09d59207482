/**
 * Adaptive clipping (ATMR21): the formulas, the clip norm tracking a quantile on synthetic
 * updates through the real ModelPrivacy → CentralDpStrategy path, and the clip norm persisted
 * per model across rounds and restarts.
 */
import { describe, expect, test } from 'vitest'
import { resolveOptions } from '../../aggregator/options.ts'
import { deltaNoiseMultiplier, nextClipNorm, unclippedFraction } from '../../aggregator/privacy/adaptive-clipping.ts'
import type { LedgerExport } from '../../aggregator/privacy/ledger-export.ts'
import { ModelPrivacy } from '../../aggregator/privacy/model-privacy.ts'
import type { PrivacyOptions } from '../../aggregator/privacy/options.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { clipForUpload } from '../../protocol/clip.ts'
import { RandomBits, seededRandomSource } from '../../protocol/dp/sampling/random.ts'
import { getJson, knownDelta, TINY, useApp } from './helpers.ts'

describe('ATMR21 formulas', () => {
  test('z_Δ = (z^−2 − (2σ_b)^−2)^−1/2 makes the combined query exactly as private as z', () => {
    expect(deltaNoiseMultiplier(1, 1)).toBeCloseTo(1 / Math.sqrt(0.75), 14)
    for (const [z, sigmaB] of [[0.5, 2], [1.1, 5], [3, 1.6]] as const) {
      const zDelta = deltaNoiseMultiplier(z, sigmaB)
      expect(zDelta).toBeGreaterThan(z)
      expect(zDelta ** -2 + (2 * sigmaB) ** -2).toBeCloseTo(z ** -2, 12)
    }
    expect(() => deltaNoiseMultiplier(2, 1)).toThrow(/countNoise must exceed/)
  })

  test('the geometric update: C·exp(−η(b̄ − γ)), with b̄ clamped to [0, 1]', () => {
    expect(nextClipNorm(2, 0.5, 0.5, 0.2)).toBe(2)
    expect(nextClipNorm(2, 1, 0.5, 0.2)).toBeCloseTo(2 * Math.exp(-0.1), 14)
    expect(nextClipNorm(2, 0, 0.5, 0.2)).toBeCloseTo(2 * Math.exp(0.1), 14)
    // Σ(b_i − ½) = 30 over m = 100: b̄ = 0.8; far out of range clamps.
    expect(unclippedFraction(30, 100)).toBeCloseTo(0.8, 14)
    expect(unclippedFraction(500, 100)).toBe(1)
    expect(unclippedFraction(-500, 100)).toBe(0)
  })
})

describe('adaptive clipping on synthetic updates', () => {
  /**
   * Runs `rounds` rounds of `cohort` clients whose update norms are spread evenly over
   * (0, 10], so every quantile is known: the γ-quantile is 10γ. Returns C after each round.
   */
  async function track(initial: number, targetQuantile: number, rounds: number): Promise<number[]> {
    const cohort = 100
    const d = 2
    const options = resolveOptions({
      rounds: {
        maxCohort: cohort,
        privacy: { mode: 'central', clipNorm: initial, noiseMultiplier: 1, budget: { epsilon: 1e6, delta: 1e-6 }, adaptiveClipping: { targetQuantile, learningRate: 0.2 } },
      },
    }).rounds
    const privacy = await ModelPrivacy.open({
      store: new MemoryStore(),
      model: 'm',
      vectorLength: d,
      privacy: options.privacy!,
      sampling: options.sampling,
      strategy: options.strategy,
      random: new RandomBits(seededRandomSource(`adaptive-${initial}-${targetQuantile}`)),
    })
    const path: number[] = []
    for (let round = 1; round <= rounds; round++) {
      const planned = privacy.plan()
      const aggregation = planned.strategy.open({ roundId: round, model: 'm', vectorLength: d })
      for (let k = 0; k < cohort; k++) {
        const norm = (10 * (k + 1)) / cohort
        const angle = (2 * Math.PI * (k + round)) / cohort
        aggregation.add(`c${k}`, clipForUpload(Float32Array.of(norm * Math.cos(angle), norm * Math.sin(angle)), planned.clipNorm).values)
      }
      const aggregate = await aggregation.result()
      const { commit } = privacy.conclude(planned, aggregate.privacy!, { roundId: round, version: round + 1, recordedAt: round })
      expect(commit.entry.clipping.noised).toBe(true)
      expect(commit.entry.clipping.clippedCount).toBeNull()
      privacy.committed(commit)
      path.push(privacy.clipNorm)
    }
    return path
  }

  test('C grows from below toward the median and settles there', async () => {
    const path = await track(0.5, 0.5, 70)
    // Far below the median nearly every update is clipped (b̄ ≈ 0): C grows by about e^{0.1} a round.
    for (let i = 1; i < 15; i++) expect(path[i]!).toBeGreaterThan(path[i - 1]!)
    const settled = path.slice(-20)
    for (const c of settled) expect(c).toBeGreaterThan(4)
    for (const c of settled) expect(c).toBeLessThan(6)
  })

  test('C shrinks from above toward the 0.8 quantile', async () => {
    const path = await track(50, 0.8, 70)
    for (let i = 1; i < 15; i++) expect(path[i]!).toBeLessThan(path[i - 1]!)
    const settled = path.slice(-20)
    for (const c of settled) expect(c).toBeGreaterThan(7)
    for (const c of settled) expect(c).toBeLessThan(9)
  })
})

describe('the clip norm is persisted per model', () => {
  const server = useApp()

  test('each round plans with the clip norm the last one left, across a restart', async () => {
    const store = new MemoryStore()
    // Small z and σ_b, so the noised fraction cannot hide that every update was clipped: with m = 3,
    // b̄ = (−1.5 + N(0, 0.1²))/3 + ½ = N(0, 0.1²)/3 clamped to [0, 1], below γ = ½ unless the
    // noise exceeds 15 of its σ, so C grows, by at most e^{η/2}.
    const privacy: PrivacyOptions = {
      mode: 'central',
      clipNorm: 0.05,
      noiseMultiplier: 0.1,
      budget: { epsilon: 1e6, delta: 1e-6 },
      adaptiveClipping: { countNoise: 0.1, learningRate: 0.2 },
    }
    const start = () => server.start({ store, rounds: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 10_000, uploadTimeoutMs: 5_000, pauseMs: 20, privacy } })
    const running = await start()
    const clients = await server.join(running.wsUrl, 3)
    const plannedNorms: number[] = []
    for (let round = 0; round < 2; round++) {
      const plans = await Promise.all(clients.map((c) => c.next('round-plan')))
      const clipNorm = plans[0]!.privacy!.clipNorm
      plannedNorms.push(clipNorm)
      clients.forEach((c, k) => c.upload(plans[0]!.roundId, clipForUpload(knownDelta(k + 1), clipNorm).values))
      await Promise.all(clients.map((c) => c.next('round-result', (r) => r.roundId === plans[0]!.roundId)))
    }
    // Close before a third round can start, then read what the ledger says.
    for (const client of clients) client.close()
    const ledger = (await getJson<LedgerExport>(running.url, `/admin/models/${TINY.name}/ledger`)).body
    await running.close()
    expect(ledger.entries.map((e) => e.clipNorm)).toEqual(plannedNorms)
    // Round 2 ran with the clip norm round 1 computed; every update here (norm > 0.05) was clipped, so C grew.
    expect(plannedNorms[1]).toBe(ledger.entries[0]!.clipping.nextClipNorm)
    expect(plannedNorms[1]).toBeGreaterThan(plannedNorms[0]!)
    expect(plannedNorms[1]).toBeLessThanOrEqual(0.05 * Math.exp(0.2 * 0.5) * (1 + 1e-12))
    const persisted = ledger.entries[1]!.clipping.nextClipNorm
    expect((await store.getPrivacyState(TINY.name))?.clipNorm).toBe(persisted)

    // A new process on the same store continues from the persisted clip norm, not the configured one.
    const restarted = await start()
    const rejoined = await server.join(restarted.wsUrl, 3)
    const plans = await Promise.all(rejoined.map((c) => c.next('round-plan')))
    expect(plans[0]!.privacy).toEqual({ mode: 'central', clipNorm: persisted })
  })
})
