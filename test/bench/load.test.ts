/**
 * The load benchmark (bench/load.ts) at tiny scale: a real aggregator process, 20 devices in
 * the test's own process (no fork, to stay fast), rounds of 10. Checks that its report holds together — every device held
 * by both ends, a round published, every stage latency finite and the aggregator's CPU and
 * memory read — not any figure's size (the machine is shared).
 */
import { describe, expect, test } from 'vitest'
import { runLoad } from '../../bench/load.ts'
import { percentiles, table } from '../../bench/load-report.ts'

describe('the load benchmark', () => {
  test('holds 20 devices and reports a published round with finite stage latencies', async () => {
    const figures = await runLoad({
      clients: 20,
      cohort: 10,
      rounds: 1,
      maxSeconds: 15,
      aggregation: 'plain',
      model: 'tiny:4x2',
      processes: 0,
      trainMs: 0,
      pauseMs: 100,
      uploadTimeoutMs: 10_000,
      quiet: true,
    })
    expect(figures).toMatchObject({ clients: 20, checkedIn: 20, held: 20, heldByAggregator: 20, cohort: 10, failures: {}, roundErrors: {} })
    expect(figures.published).toBeGreaterThanOrEqual(1)
    expect(figures.aborted).toBe(0)
    for (const [stage, p] of Object.entries(figures.stagesMs)) {
      expect(p.samples, stage).toBeGreaterThan(0)
      expect(Number.isFinite(p.p50) && Number.isFinite(p.p99) && p.p50 >= 0 && p.p99 >= p.p50, stage).toBe(true)
    }
    // Every selected device of a measured round got its plan and its result.
    expect(figures.stagesMs.plan.samples).toBe(10 * (figures.published + figures.aborted))
    expect(figures.stagesMs.result.samples).toBe(figures.stagesMs.plan.samples)
    expect(figures.aggregatorRssPeakMiB).toBeGreaterThan(10)
    expect(figures.aggregatorCpuPercent).toBeGreaterThanOrEqual(0)
    expect(table([figures])).toContain('| plain ')
  }, 60_000)

  test('percentiles are nearest-rank, NaN when empty', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i)
    expect(percentiles(values)).toEqual({ p50: 50, p99: 99, samples: 100 })
    expect(percentiles([3, 1])).toEqual({ p50: 1, p99: 3, samples: 2 })
    expect(percentiles([])).toMatchObject({ samples: 0, p50: NaN })
  })
})
