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

  test.each([
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
