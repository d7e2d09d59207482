import { describe, expect, test } from 'vitest'
import {
  deriveParameters,
  hypergeometricPmf,
  log2DisconnectionBound,
  lowerQuantile,
  SecAggMode,
  ServerModel,
  upperQuantile,
} from '../../protocol/secagg/params.ts'
import { completeGraph, hararyGraph } from '../../protocol/secagg/graph.ts'
import { expectCode } from './helpers.ts'
import { seededUniform } from '../../worker/model/random.ts'

describe('parameter derivation (Bell et al. 2020; federated-compute finder)', () => {
  test('SecAgg+ at n = 1000, 10% dropout, 5% corrupt: k of order log n, t between the bounds', () => {
    const p = deriveParameters(SecAggMode.SecAggPlus, { groupSize: 1000, expectedDropout: 0.1, corruptFraction: 0.05 })
    expect(p.complete).toBe(false)
    expect(p.degree).toBe(36)
    expect(p.threshold).toBe(19)
    expect(p.bounds.corruptNeighbours).toBeLessThan(p.threshold)
    expect(p.threshold).toBeLessThanOrEqual(p.bounds.survivingNeighbours)
    expect(p.bounds.log2Disconnection).toBeLessThan(-41)
  })

  test('the degree grows slowly with n and faster with dropout', () => {
    const k = (n: number, d: number): number => deriveParameters(SecAggMode.SecAggPlus, { groupSize: n, expectedDropout: d }).degree
    expect(k(1000, 0.1)).toBeLessThan(4 * Math.log2(1000))
    expect(k(10_000, 0.1)).toBeLessThan(k(1000, 0.1) * 1.5)
    expect(k(1000, 0)).toBeLessThan(k(1000, 0.1))
    expect(k(1000, 0.1)).toBeLessThan(k(1000, 0.3))
  })

  test('the derived bounds hold: Pr[corrupt > t1] and Pr[surviving < t2] are within the budgets', () => {
    const n = 500
    const p = deriveParameters(SecAggMode.SecAggPlus, { groupSize: n, expectedDropout: 0.2, corruptFraction: 0.1 })
    const k = p.degree
    const corrupt = Math.floor(0.1 * n)
    const alive = n - Math.floor(0.2 * n) - 1
    let tail = 0
    for (let x = p.bounds.corruptNeighbours + 1; x <= k; x++) tail += hypergeometricPmf(n - 1, corrupt, k, x)
    expect(tail).toBeLessThanOrEqual(2 ** -41 / n)
    let below = 0
    for (let x = 0; x < p.threshold; x++) below += hypergeometricPmf(n - 1, alive, k, x)
    expect(below).toBeLessThanOrEqual(2 ** -20 / n)
  })

  test('a semi-malicious server needs t > (k + 1 + t1) / 2', () => {
    const p = deriveParameters(SecAggMode.SecAggPlus, {
      groupSize: 1000,
      expectedDropout: 0.1,
      serverModel: ServerModel.SemiMalicious,
    })
    expect(2 * p.threshold).toBeGreaterThan(p.degree + 1 + p.bounds.corruptNeighbours)
  })

  test('plain SecAgg is the complete graph with t = ⌊γn⌋ + 1', () => {
    const p = deriveParameters(SecAggMode.SecAgg, { groupSize: 100, expectedDropout: 0.3, corruptFraction: 0.1 })
    expect(p).toMatchObject({ complete: true, degree: 99, threshold: 11 })
  })

  test('SecAgg+ falls back to the complete graph for small groups', () => {
    // n = 6 with 4 bad clients expected: even H(6, 4) disconnects too easily.
    const p = deriveParameters(SecAggMode.SecAggPlus, { groupSize: 6, expectedDropout: 0.5, corruptFraction: 0.2 })
    expect(p).toMatchObject({ complete: true, degree: 5, threshold: 2 })
    expect(deriveParameters(SecAggMode.SecAggPlus, { groupSize: 60, expectedDropout: 0.2 }).complete).toBe(false)
  })

  test('impossible requirements are refused with HEARTH_ERR_INVALID_CONFIG, bad arguments with RangeError', async () => {
    await expectCode(
      () => deriveParameters(SecAggMode.SecAgg, { groupSize: 10, expectedDropout: 0.6, corruptFraction: 0.5 }),
      'HEARTH_ERR_INVALID_CONFIG',
    )
    expect(() => deriveParameters(SecAggMode.SecAgg, { groupSize: 2, expectedDropout: 0 })).toThrow(RangeError)
    expect(() => deriveParameters(SecAggMode.SecAgg, { groupSize: 10, expectedDropout: 1 })).toThrow(/expectedDropout/)
  })

  test('quantile helpers', () => {
    // Hypergeometric(10, 5, 5): symmetric around 2.5.
    expect(upperQuantile(10, 5, 5, 0.5)).toBe(2)
    expect(lowerQuantile(10, 5, 5, 0.01)).toBe(1)
    expect(log2DisconnectionBound(100, 10, 5)).toBe(-Infinity)
    expect(log2DisconnectionBound(1000, 36, 150)).toBeLessThan(-41)
  })
})

describe('communication graphs', () => {
  test('a Harary graph is k-regular, symmetric and connected', () => {
    const random = seededUniform(3)
    for (const [n, k] of [[10, 2], [50, 8], [101, 20], [12, 10]] as const) {
      const g = hararyGraph(n, k, (bound) => Math.floor(random() * bound))
      const seen = new Set<number>([1])
      const queue = [1]
      for (let u = 1; u <= n; u++) {
        const list = g.neighbours(u)
        expect(list.length).toBe(k)
        expect(new Set(list).size).toBe(k)
        for (const v of list) expect(g.adjacent(v, u)).toBe(true)
        expect(g.adjacent(u, u)).toBe(false)
      }
      while (queue.length > 0) {
        for (const v of g.neighbours(queue.pop() as number)) {
          if (!seen.has(v)) {
            seen.add(v)
            queue.push(v)
          }
        }
      }
      expect(seen.size).toBe(n)
    }
    expect(() => hararyGraph(10, 3)).toThrow(RangeError)
  })

  test('the complete graph', () => {
    const g = completeGraph(4)
    expect(g.neighbours(2)).toEqual([1, 3, 4])
    expect(g.adjacent(1, 4)).toBe(true)
    expect(g.adjacent(1, 5)).toBe(false)
  })
})
