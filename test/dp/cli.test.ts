import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'

const hearth = fileURLToPath(new URL('../../bin/hearth.js', import.meta.url))

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [hearth, 'privacy', ...args], { encoding: 'utf8', timeout: 60_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe('hearth privacy', () => {
  test('epsilon --json prints one JSON object with epsilon and order', () => {
    const r = run('epsilon', '--sampling-rate', '0.01', '--noise-multiplier', '1.1', '--rounds', '1000', '--delta', '1e-5', '--json')
    expect(r.status).toBe(0)
    const out = JSON.parse(r.stdout) as Record<string, number>
    expect(Math.abs((out.epsilon as number) - 1.7118) / 1.7118).toBeLessThan(1e-4)
    expect(out.order).toBe(9.6)
  })

  test('noise --json prints the noise multiplier; without --json a sentence', () => {
    const r = run('noise', '--sampling-rate', '0.01', '--rounds', '1000', '--epsilon', '1.7118', '--delta', '1e-5', '--json')
    expect(r.status).toBe(0)
    const out = JSON.parse(r.stdout) as Record<string, number>
    expect(Math.abs((out.noiseMultiplier as number) - 1.1) / 1.1).toBeLessThan(1e-4)
    expect(out.epsilon).toBeLessThanOrEqual(1.7118)
    const text = run('epsilon', '--sampling-rate', '1', '--noise-multiplier', '5', '--rounds', '100', '--delta', '1e-5')
    expect(text.status).toBe(0)
    expect(text.stdout).toMatch(/^epsilon = 10\.725\d+ at delta = 0\.00001/)
  })

  test('--devices adds the expected cohort, the noise on the mean and the signal-to-noise of the rounds', () => {
    const given = run('epsilon', '--sampling-rate', '0.01', '--noise-multiplier', '1.1', '--rounds', '1000', '--delta', '1e-5', '--devices', '100000', '--json')
    expect(given.status).toBe(0)
    const a = JSON.parse(given.stdout) as Record<string, number>
    expect(a.expectedCohort).toBeCloseTo(1000, 9)
    expect(a.noiseOnMean).toBeCloseTo(1.1 / 1000, 12)
    expect(a.signalToNoise).toBeCloseTo((Math.sqrt(1000) * 1000) / 1.1, 6) // 28,747.9
    // The README's planning table: 943 devices, cohorts of 200, 40 rounds at epsilon 8.
    const planned = run('noise', '--sampling-rate', String(200 / 943), '--rounds', '40', '--epsilon', '8', '--delta', '1e-5', '--devices', '943', '--json')
    expect(planned.status).toBe(0)
    const b = JSON.parse(planned.stdout) as Record<string, number>
    expect(b.expectedCohort).toBeCloseTo(200, 9)
    expect(b.signalToNoise).toBeCloseTo((Math.sqrt(40) * 200) / (b.noiseMultiplier as number), 6)
    expect(Math.round(b.signalToNoise as number)).toBe(1062)
    const text = run('noise', '--sampling-rate', '0.05', '--rounds', '100', '--epsilon', '8', '--delta', '1e-5', '--devices', '10000')
    expect(text.stdout).toMatch(/with 10000 devices: expected cohort 500\.000, noise on the mean 0\.001480 x the clip norm .* signal-to-noise after 100 rounds 6756\.8/)
  })

  test.each([
    [['epsilon', '--sampling-rate', '0.1', '--noise-multiplier', '1', '--rounds', '10', '--delta', '1e-5', '--devices', '0'], /--devices must be an integer >= 1/],
    [['epsilon', '--noise-multiplier', '1', '--rounds', '10', '--delta', '1e-5'], /missing --sampling-rate/],
    [['epsilon', '--sampling-rate', '1.5', '--noise-multiplier', '1', '--rounds', '10', '--delta', '1e-5'], /--sampling-rate must be a number in \[0, 1\]/],
    [['epsilon', '--sampling-rate', '0.1', '--noise-multiplier', 'x', '--rounds', '10', '--delta', '1e-5'], /--noise-multiplier/],
    [['epsilon', '--sampling-rate', '0.1', '--noise-multiplier', '1', '--rounds', '2.5', '--delta', '1e-5'], /--rounds must be an integer/],
    [['noise', '--sampling-rate', '0.1', '--rounds', '10', '--epsilon', '0', '--delta', '1e-5'], /--epsilon must be a number > 0/],
    [['epsilon', '--bogus'], /Unknown option/],
    [['frobnicate'], /unknown subcommand/],
    [[], /missing subcommand/],
  ])('bad usage %j exits 2 with a clear message', (args, message) => {
    const r = run(...args)
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(message)
    expect(r.stdout).toBe('')
  })
})
