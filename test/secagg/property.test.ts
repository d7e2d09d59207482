import { expect, test } from 'vitest'
import fc from 'fast-check'
import type { HearthError } from '../../protocol/errors.ts'
import { configureGroup, runLocalRound, SecAggMode, SecAggStage } from '../../protocol/secagg/index.ts'
import type { DropoutPoint, SecAggServerConfig } from '../../protocol/secagg/index.ts'
import { plainSum } from './helpers.ts'
import { seededUniform } from '../../worker/model/random.ts'

const STAGES = [
  SecAggStage.AdvertiseKeys,
  SecAggStage.ShareKeys,
  SecAggStage.MaskedInputCollection,
  SecAggStage.ConsistencyCheck,
  SecAggStage.Unmasking,
] as const

const ROUNDS = 200

const roundArbitrary = fc.record({
  // Skewed towards small groups so 200 rounds fit the time budget, still reaching 60.
  n: fc.integer({ min: 0, max: 1000 }).map((u) => 3 + Math.floor((57 * u * u * u) / 1e9)),
  m: fc.integer({ min: 1, max: 24 }),
  mode: fc.constantFrom(SecAggMode.SecAgg, SecAggMode.SecAggPlus),
  expectedDropout: fc.constantFrom(0, 0.1, 0.2, 0.3),
  corruptFraction: fc.constantFrom(0, 0.05, 0.1),
  dropRate: fc.double({ min: 0, max: 0.35, noNaN: true }),
  extraBits: fc.integer({ min: 0, max: 26 }),
  prg: fc.constantFrom('aes-256-ctr' as const, 'chacha20' as const),
  consistency: fc.boolean(),
  seed: fc.integer(),
})

let completed = 0
let aborted = 0

test(`${ROUNDS} random rounds: the unmasked sum equals the plain sum exactly, or the round aborts for want of clients`, async () => {
  await fc.assert(
    fc.asyncProperty(roundArbitrary, async (c) => {
      const modulusBits = Math.min(32, Math.ceil(Math.log2(c.n + 1)) + 1 + c.extraBits)
      const consistencyCheck = c.consistency && c.n <= 12
      let config: SecAggServerConfig
      try {
        config = configureGroup({
          roundId: c.seed >>> 0,
          groupId: 0,
          mode: c.mode,
          groupSize: c.n,
          vectorLength: c.m,
          modulusBits,
          prg: c.prg,
          consistencyCheck,
          expectedDropout: c.expectedDropout,
          corruptFraction: c.corruptFraction,
        })
      } catch (error) {
        // Requirements no parameters can meet (tiny n with many bad clients): refused up front.
        expect((error as HearthError).code).toBe('HEARTH_ERR_INVALID_CONFIG')
        return
      }
      const random = seededUniform(c.seed)
      const inputs = Array.from({ length: c.n }, () => Uint32Array.from({ length: c.m }, () => Math.floor(random() * (config.maxInputValue + 1))))
      const stages = STAGES.filter((s) => consistencyCheck || s !== SecAggStage.ConsistencyCheck)
      const dropouts: DropoutPoint[] = inputs.map(() => (random() < c.dropRate ? stages[Math.floor(random() * stages.length)] : undefined))
      const report = await runLocalRound({ config, inputs, dropouts, concurrentClients: 4 })

      // No honest client ever fails on its own: pruning and the server's checks come first.
      expect([...report.clientErrors.values(), ...report.serverRejections.values()].map((e) => e.code)).toEqual([])
      const t = config.parameters.threshold
      const alive = (after: number): number => dropouts.filter((d) => d === undefined || stages.indexOf(d) > after).length
      if (report.completed) {
        completed++
        const survivors = report.result?.survivors ?? []
        expect(survivors.length).toBeGreaterThanOrEqual(t)
        for (const u of survivors) expect(stages.indexOf(dropouts[u - 1] ?? SecAggStage.Unmasking)).toBeGreaterThan(stages.indexOf(SecAggStage.MaskedInputCollection))
        expect(report.result?.sum).toEqual(plainSum(inputs, survivors, c.m))
      } else {
        aborted++
        expect(report.error?.code).toBe('HEARTH_ERR_SECAGG_THRESHOLD')
      }
      if (config.parameters.complete) {
        // Plain SecAgg: the round completes exactly when every stage kept t clients.
        const enough = stages.every((_, i) => alive(i) >= t)
        expect(report.completed).toBe(enough)
        if (enough) expect(report.result?.survivors.length).toBe(alive(stages.indexOf(SecAggStage.MaskedInputCollection)))
      }
    }),
    { numRuns: ROUNDS },
  )
  // The generator must exercise both outcomes, mostly completions.
  expect(completed).toBeGreaterThan(ROUNDS / 2)
  expect(aborted).toBeGreaterThan(0)
}, 240_000) // ~40–60 s on the 2-core machine; generous for a loaded CI
