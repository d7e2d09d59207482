/**
 * Exploration and its logged propensities (worker/rank/exploration.ts), and the off-policy
 * estimators that use them (worker/rank/off-policy.ts):
 * - every slot's distribution sums to one (property tests);
 * - epsilon-greedy explores at the configured rate (binomial bounds, a chi-square on the items);
 * - Thompson sampling's estimated propensities match the frequencies of its choices;
 * - IPS recovers a target policy's value from logs of another policy.
 */
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import type { DecisionRecord, ExplorationConfig } from '../../protocol/ranking.ts'
import { epsilonGreedyDistribution, epsilonGreedyPlacements, greedyOrder, thompsonDistribution, thompsonPlacements } from '../../worker/rank/exploration.ts'
import { estimateOffPolicy, loggedChoices, targetProbability } from '../../worker/rank/off-policy.ts'
import { seededUniform } from './helpers.ts'

const sum = (xs: Iterable<number>): number => [...xs].reduce((a, b) => a + b, 0)

/** |observed − expected| within `sigmas` standard deviations of a binomial proportion. */
function withinBinomial(hits: number, trials: number, p: number, sigmas = 4): boolean {
  return Math.abs(hits / trials - p) <= sigmas * Math.sqrt((p * (1 - p)) / trials)
}

describe('propensities', () => {
  test('each epsilon-greedy slot distribution sums to one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.double({ min: 0, max: 1, noNaN: true }), (remaining, epsilon) => {
        const pi = epsilonGreedyDistribution(remaining, epsilon)
        expect(sum(pi)).toBeCloseTo(1, 12)
        expect(pi.every((p) => p >= 0)).toBe(true)
      }),
    )
  })

  test('each Thompson slot distribution sums to one, whatever the draws and the prefix', () => {
    fc.assert(
      fc.property(fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 30 }), { minLength: 6, maxLength: 6 }), { minLength: 1, maxLength: 40 }), fc.uniqueArray(fc.integer({ min: 0, max: 30 }), { maxLength: 5 }), (draws, prefix) => {
        const pi = thompsonDistribution(draws.map((d) => Int32Array.from(d)), new Set(prefix))
        expect(sum(pi.values())).toBeCloseTo(1, 12)
      }),
    )
  })

  test('a logged epsilon-greedy propensity is the probability of that slot’s choice', () => {
    const order = greedyOrder([0.1, 0.9, 0.5, 0.3, 0.7])
    expect(order).toEqual([1, 4, 2, 3, 0])
    const uniform = seededUniform(3)
    for (let run = 0; run < 200; run++) {
      const placements = epsilonGreedyPlacements(order, 0.3, 3, uniform)
      expect(placements.map((p) => p.index).sort()).toEqual([0, 1, 2, 3, 4])
      const placed = new Set<number>()
      placements.slice(0, 3).forEach((p, k) => {
        const remaining = order.filter((i) => !placed.has(i))
        const best = remaining[0]
        expect(p.propensity).toBeCloseTo(p.index === best ? 1 - 0.3 + 0.3 / (5 - k) : 0.3 / (5 - k), 12)
        expect(p.explored).toBe(p.index !== best)
        placed.add(p.index)
      })
      // Past the exploration slots, the rest follows the scores with propensity 1.
      expect(placements.slice(3).every((p) => p.propensity === 1 && !p.explored)).toBe(true)
    }
  })
})

describe('epsilon-greedy explores at the configured rate', () => {
  test.each([0.05, 0.2, 0.5])('ε = %s', (epsilon) => {
    const scores = [0.9, 0.1, 0.4, 0.6, 0.2, 0.8]
    const n = scores.length
    const order = greedyOrder(scores)
    const uniform = seededUniform(Math.round(epsilon * 1000))
    const trials = 6000
    let explored = 0
    const firstSlot = new Array<number>(n).fill(0)
    for (let t = 0; t < trials; t++) {
      const [first] = epsilonGreedyPlacements(order, epsilon, 2, uniform)
      if (first === undefined) throw new Error('no placement')
      if (first.explored) explored++
      firstSlot[first.index] = (firstSlot[first.index] as number) + 1
    }
    // A uniform draw lands on the best item 1/n of the time: that is not exploring.
    expect(withinBinomial(explored, trials, epsilon * (1 - 1 / n))).toBe(true)
    // Pearson's chi-square of the first slot against π_0 (5 degrees of freedom; 20.5 is p = 0.001).
    const pi = epsilonGreedyDistribution(n, epsilon)
    const chi2 = order.reduce((acc, index, rank) => {
      const expected = (pi[rank] as number) * trials
      return acc + ((firstSlot[index] as number) - expected) ** 2 / expected
    }, 0)
    expect(chi2).toBeLessThan(20.5)
  })
})

describe('Thompson sampling', () => {
  test('places the used draw’s order, and its estimated propensities match how often each choice is made', () => {
    // Draws of a 4-item ranking: item 2 is best in 60% of them, item 0 in 30%, item 3 in 10%.
    const uniform = seededUniform(8)
    const pick = (): Int32Array => {
      const u = uniform()
      return Int32Array.from(u < 0.6 ? [2, 0, 3, 1] : u < 0.9 ? [0, 2, 1, 3] : [3, 2, 0, 1])
    }
    const order = [2, 0, 3, 1]
    const counts = new Map<number, number>()
    let propensitySum = 0
    const runs = 2000
    for (let run = 0; run < runs; run++) {
      const draws = Array.from({ length: 101 }, pick)
      const placements = thompsonPlacements(order, draws, 2)
      const first = placements[0]
      if (first === undefined) throw new Error('no placement')
      expect(first.index).toBe(draws[0]?.[0])
      expect(first.explored).toBe(first.index !== 2)
      counts.set(first.index, (counts.get(first.index) ?? 0) + 1)
      if (first.index === 2) propensitySum += first.propensity
      // Slot 1 given slot 0: the first of each draw's order not placed yet.
      const second = placements[1]
      const pi = thompsonDistribution(draws, new Set([first.index]))
      expect(second?.propensity).toBeCloseTo(pi.get(second?.index ?? -1) ?? 0, 12)
    }
    expect(withinBinomial(counts.get(2) ?? 0, runs, 0.6)).toBe(true)
    expect(withinBinomial(counts.get(0) ?? 0, runs, 0.3)).toBe(true)
    // The estimate of π(item 2 first) is unbiased: its mean over the runs that chose it is ≈ 0.6.
    expect(propensitySum / (counts.get(2) ?? 1)).toBeCloseTo(0.6, 1)
  })
})

describe('off-policy estimates', () => {
  test('IPS and SNIPS of known logs', () => {
    const estimate = estimateOffPolicy([
      { reward: 1, logging: 0.5, target: 1 },
      { reward: 0, logging: 0.25, target: 1 },
      { reward: 1, logging: 1, target: 0 },
      { reward: 1, logging: 0.5, target: 0.5 },
    ])
    // w = 2, 4, 0, 1; Σ w r = 3; IPS = 3/4; SNIPS = 3/7; ESS = 49/21.
    expect(estimate.ips).toBeCloseTo(0.75, 12)
    expect(estimate.snips).toBeCloseTo(3 / 7, 12)
    expect(estimate.effectiveSampleSize).toBeCloseTo(49 / 21, 12)
    expect(estimate.logged).toBeCloseTo(0.75, 12)
    expect(() => estimateOffPolicy([{ reward: 1, logging: 0, target: 1 }])).toThrow(RangeError)
  })

  test('logs of epsilon-greedy on one model estimate the click rate of greedy on another', () => {
    // Five items with true click probabilities; the logging model prefers item 0, the target item 3.
    const click = [0.1, 0.2, 0.05, 0.6, 0.3]
    const logging = [0.9, 0.5, 0.1, 0.3, 0.2]
    const target = [0.1, 0.2, 0.0, 0.9, 0.5]
    const uniform = seededUniform(21)
    const epsilon = 0.3
    const decisions: DecisionRecord[] = []
    for (let i = 0; i < 20000; i++) {
      const placements = epsilonGreedyPlacements(greedyOrder(logging), epsilon, 1, uniform)
      const chosen = placements[0]?.index ?? 0
      decisions.push({
        id: `d${i}`,
        at: i,
        modelVersion: 1,
        exploration: { method: 'epsilon-greedy', epsilon, slots: 1 },
        candidates: click.map((_, k) => ({ item: `i${k}` })),
        order: placements.map((p) => p.index),
        scores: placements.map((p) => logging[p.index] as number),
        propensities: placements.map((p) => p.propensity),
        reasons: [],
        outcomes: uniform() < (click[chosen] as number) ? [{ item: `i${chosen}`, kind: 'click', at: i, position: 0 }] : [],
      })
    }
    const greedy: ExplorationConfig = { method: 'none' }
    expect(targetProbability(decisions[0] as DecisionRecord, 0, target, greedy)).toBe((decisions[0] as DecisionRecord).order[0] === 3 ? 1 : 0)
    const estimate = estimateOffPolicy(loggedChoices(decisions, () => target, greedy, 1))
    // Greedy on the target model always shows item 3: its true click rate is 0.6.
    expect(estimate.ips).toBeGreaterThan(0.55)
    expect(estimate.ips).toBeLessThan(0.65)
    expect(estimate.snips).toBeGreaterThan(0.55)
    expect(estimate.snips).toBeLessThan(0.65)
    // The logging policy itself did much worse, and the estimate says so.
    expect(estimate.logged).toBeLessThan(0.2)
  })
})
