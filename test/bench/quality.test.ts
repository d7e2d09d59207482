/**
 * The quality benchmark's data and metrics (bench/quality-*.ts), on files small enough to check
 * by hand: an NCF split is read as written, HR@10 and NDCG@10 follow He et al. (2017, §4.1),
 * ties count against the test item, and a bad command line exits with 2.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { run } from '../../bench/quality-command.ts'
import { firstUsers, loadNcf } from '../../bench/quality-data.ts'
import { evaluate, itemPopularity, testRank } from '../../bench/quality-metrics.ts'
import type { RankingQuality } from '../../bench/quality-metrics.ts'
import { checkTargets, formatReport } from '../../bench/quality-report.ts'
import type { MethodResult } from '../../bench/quality-report.ts'

describe('an NCF split', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-ncf-'))
    await writeFile(join(dir, 'train.rating'), ['0\t1\t5\t30', '0\t0\t4\t10', '1\t2\t3\t20', ''].join('\n'))
    await writeFile(join(dir, 'test.rating'), ['0\t3\t5\t40', '1\t0\t2\t50'].join('\n'))
    await writeFile(join(dir, 'test.negative'), ['(0,3)\t4\t5', '(1,0)\t3\t5'].join('\n'))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  test('is read with 0-based ids, training items in time order, one test case per line', async () => {
    const data = await loadNcf(dir)
    expect(data.users).toBe(2)
    expect(data.items).toBe(6)
    expect(data.interactions).toBe(3)
    expect(data.train.map((t) => Array.from(t))).toEqual([[0, 1], [2]])
    expect(data.test.map((c) => ({ user: c.user, item: c.item, negatives: Array.from(c.negatives) }))).toEqual([
      { user: 0, item: 3, negatives: [4, 5] },
      { user: 1, item: 0, negatives: [3, 5] },
    ])
    expect(data.features).toBeNull()
  })

  test('a tuning subset keeps the first users, their training data and their test cases', async () => {
    const first = firstUsers(await loadNcf(dir), 1)
    expect(first.users).toBe(1)
    expect(first.train.map((t) => Array.from(t))).toEqual([[0, 1]])
    expect(first.test.map((c) => c.user)).toEqual([0])
    expect(first.interactions).toBe(2)
  })

  test('a test line without its negatives is an error naming it', async () => {
    await writeFile(join(dir, 'test.negative'), '(0,3)\t4\t5\n')
    await expect(loadNcf(dir)).rejects.toThrow('(1,0)')
  })
})

describe('HR@10 and NDCG@10', () => {
  test('the rank counts negatives scoring at least as high as the test item', () => {
    expect(testRank([0.5, 0.1, 0.9, 0.5])).toBe(2)
    expect(testRank([1, 0, 0])).toBe(0)
  })

  test('average hits in the top 10 and log 2 / log(rank + 2) over the cases', async () => {
    const negatives = Int32Array.from({ length: 99 }, (_, i) => i + 1)
    const cases = [0, 1, 2].map((user) => ({ user, item: 0, negatives }))
    // Ranks 0, 9 and 10: two hits.
    const scores = [0, 9, 10].map((rank) => [100 - rank - 0.5, ...Array.from(negatives, (n) => 100 - n)])
    const quality = await evaluate(cases, (c) => scores[c.user] as number[])
    expect(quality.users).toBe(3)
    expect(quality.hr).toBeCloseTo(2 / 3, 12)
    expect(quality.ndcg).toBeCloseTo((1 + Math.LN2 / Math.log(11)) / 3, 12)
  })

  test('ItemPop counts training interactions per item', () => {
    expect(Array.from(itemPopularity([Int32Array.from([0, 2]), Int32Array.from([2])], 4))).toEqual([1, 0, 2, 0])
  })
})

describe('hearth bench quality', () => {
  test('a bad command line prints the usage and exits with 2', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    try {
      expect(await run([])).toBe(2)
      expect(await run(['--movielens', 'a', '--ncf-dir', 'b'])).toBe(2)
      expect(await run(['--movielens', 'a', '--rounds', '0'])).toBe(2)
      expect(await run(['--movielens', 'a', '--epsilon', '9'])).toBe(2)
      expect(await run(['--movielens', 'a', '--methods', 'central,bogus'])).toBe(2)
      expect(await run(['--movielens', 'a', '--client-optimizer', 'rmsprop'])).toBe(2)
      expect(await run(['--movielens', 'a', '--server-tau', '-1'])).toBe(2)
      expect(await run(['--movielens', 'a', '--server-optimizer', 'sgd'])).toBe(2)
      expect(await run(['--movielens', 'a', '--feature-buckets', '-1'])).toBe(2)
      expect(await run(['--movielens', 'a', '--eval-every', '0'])).toBe(2)
      expect(await run(['--bogus'])).toBe(2)
      expect(errors.mock.calls.every(([message]) => String(message).includes('Usage: hearth bench quality'))).toBe(true)
    } finally {
      errors.mockRestore()
    }
  })
})

describe('the report', () => {
  const quality = (hr: number): RankingQuality => ({ hr, ndcg: hr / 2, users: 943 })
  const results: MethodResult[] = [
    { method: 'itempop', quality: quality(0.4), seconds: 0 },
    { method: 'central', quality: quality(0.68), seconds: 200, epochs: 12, reconstructed: quality(0.646) },
    { method: 'federated', quality: quality(0.6), seconds: 600, rounds: 60, meanCohort: 100, device: 'Adam lr 0.005' },
    { method: 'secagg-dp', quality: quality(0.46), seconds: 600, rounds: 40, meanCohort: 200 },
  ]

  test('checks each target of the issue against the ratios', () => {
    const checks = checkTargets(results)
    expect(checks.map((c) => [c.target, c.met])).toEqual([
      ['central HR@10 >= 0.65', true],
      ['federated HR@10 within 10% of central', false], // 0.6 / 0.68 = 0.882
      ['SecAgg + DP HR@10 within 15% of central', false], // 0.676
      ['SecAgg + DP HR@10 >= 1.15x ItemPop', true], // 1.15 exactly
    ])
  })

  test("shows the central item side with reconstructed users next to central's own", () => {
    const text = formatReport({
      dataset: { name: 'MovieLens 100K', users: 943, items: 1682, interactions: 99_057, testUsers: 943 },
      protocol: 'leave-one-out',
      machine: { node: 'v20', cpus: 2, backend: 'wasm' },
      date: '2026-12-02',
      settings: {},
      results,
      targets: checkTargets(results),
      seconds: 1400,
    })
    expect(text).toContain('| central (same model) | 0.6800 | 0.3400 | 1.000x | 1.700x | 12 epochs |')
    expect(text).toContain("reconstructed on the device, as the federated arms are evaluated: HR@10 0.6460, NDCG@10 0.3230 (0.950x central)")
  })
})
