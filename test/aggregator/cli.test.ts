import { afterEach, describe, expect, test, vi } from 'vitest'
import { parseStartArgs, run } from '../../aggregator/cli/aggregator-command.ts'
import { UsageError } from '../../aggregator/cli/command.ts'
import { ROUTES } from '../../protocol/messages.ts'
import { spawnAggregator, tempDir } from './helpers.ts'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  vi.restoreAllMocks()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function options(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const command = parseStartArgs(argv, env)
  if (command.help) throw new Error('unexpected --help')
  return command.options
}

describe('hearth aggregator start: arguments', () => {
  test('maps every flag onto AggregatorOptions', () => {
    expect(
      options([
        '--port', '0', '--host', '0.0.0.0', '--data-dir', '/tmp/x',
        '--app-key', 'k1', '--app-key', 'k2', '--admin-token', 'token-token-token',
        '--cors-origin', 'https://a.example', '--model', 'movies:1024x8', '--model', 'plain',
        '--min-cohort', '4', '--max-cohort', '9', '--selection-timeout', '100', '--upload-timeout', '2000',
        '--pause', '0', '--max-update-norm', '2.5', '--epochs', '2', '--batch-size', '16',
        '--learning-rate', '0.01', '--max-examples', '500', '--log-level', 'debug',
      ]),
    ).toEqual({
      port: 0,
      host: '0.0.0.0',
      dataDir: '/tmp/x',
      appKeys: ['k1', 'k2'],
      adminToken: 'token-token-token',
      corsOrigins: ['https://a.example'],
      models: [{ name: 'movies', mf: { buckets: 1024, dim: 8 } }, { name: 'plain' }],
      rounds: {
        minCohort: 4,
        maxCohort: 9,
        selectionTimeoutMs: 100,
        uploadTimeoutMs: 2000,
        pauseMs: 0,
        maxUpdateNorm: 2.5,
        training: { epochs: 2, batchSize: 16, learningRate: 0.01, maxExamples: 500 },
      },
      logger: { level: 'debug' },
    })
  })

  test('defaults leave the options to resolveOptions, and secrets may come from the environment', () => {
    expect(options([])).toEqual({ rounds: { training: {} }, logger: { level: 'info' } })
    const fromEnv = options([], { HEARTH_APP_KEYS: 'a, b,,', HEARTH_ADMIN_TOKEN: 'env-token-env-token' })
    expect(fromEnv.appKeys).toEqual(['a', 'b'])
    expect(fromEnv.adminToken).toBe('env-token-env-token')
    // Flags win over the environment.
    expect(options(['--app-key', 'flag'], { HEARTH_APP_KEYS: 'env' }).appKeys).toEqual(['flag'])
  })

  test('maps the differential-privacy and sampling flags onto rounds.privacy and rounds.sampling', () => {
    expect(options(['--dp', 'central', '--clip-norm', '0.5', '--noise-multiplier', '1.2']).rounds).toEqual({
      training: {},
      privacy: { mode: 'central', clipNorm: 0.5, noiseMultiplier: 1.2 },
    })
    expect(
      options([
        '--sampling-rate', '0.01', '--dp', 'central', '--clip-norm', '1', '--noise-multiplier', '2',
        '--budget-epsilon', '4', '--expected-cohort', '100', '--adaptive-clipping', '--target-quantile', '0.7',
      ]).rounds,
    ).toEqual({
      training: {},
      sampling: { kind: 'poisson', rate: 0.01 },
      privacy: {
        mode: 'central',
        clipNorm: 1,
        noiseMultiplier: 2,
        budget: { epsilon: 4, delta: 1e-6 },
        expectedCohortSize: 100,
        adaptiveClipping: { targetQuantile: 0.7 },
      },
    })
    expect(
      options(['--aggregation', 'secagg', '--dp', 'distributed', '--clip-norm', '1', '--noise-multiplier', '1.5', '--mechanism', 'skellam', '--min-survivors', '8']).rounds,
    ).toEqual({
      training: {},
      aggregation: 'secagg',
      privacy: { mode: 'distributed', clipNorm: 1, noiseMultiplier: 1.5, mechanism: 'skellam', minSurvivors: 8 },
    })
    for (const [argv, pattern] of [
      [['--clip-norm', '1'], /--clip-norm needs --dp/],
      [['--dp', 'local', '--clip-norm', '1', '--noise-multiplier', '1'], /--dp must be central or distributed/],
      [['--dp', 'central', '--clip-norm', '1', '--noise-multiplier', '1', '--mechanism', 'skellam'], /--mechanism and --min-survivors need --dp distributed/],
      [['--dp', 'distributed', '--clip-norm', '1', '--noise-multiplier', '1', '--mechanism', 'laplace'], /--mechanism must be discrete-gaussian or skellam/],
      [['--dp', 'central', '--noise-multiplier', '1'], /--dp needs --clip-norm/],
      [['--dp', 'central', '--clip-norm', '1', '--noise-multiplier', '1', '--target-quantile', '0.5'], /--target-quantile needs --adaptive-clipping/],
    ] as const) {
      expect(() => parseStartArgs([...argv], {})).toThrow(pattern)
    }
  })

  test('maps the secure-aggregation flags onto rounds.aggregation and rounds.secagg', () => {
    expect(options(['--aggregation', 'secagg']).rounds).toEqual({ training: {}, aggregation: 'secagg' })
    expect(
      options([
        '--aggregation', 'secagg', '--secagg-variant', 'secagg', '--secagg-clip-norm', '2',
        '--expected-dropout', '0.2', '--corrupt-fraction', '0.1', '--max-group-size', '100',
      ]).rounds,
    ).toEqual({
      training: {},
      aggregation: 'secagg',
      secagg: { variant: 'secagg', clipNorm: 2, expectedDropout: 0.2, corruptFraction: 0.1, maxGroupSize: 100 },
    })
    expect(() => parseStartArgs(['--max-group-size', '100'], {})).toThrow(/--max-group-size needs --aggregation secagg/)
  })

  test('rejects what it cannot read, naming the flag', () => {
    for (const [argv, pattern] of [
      [['--bogus'], /bogus/],
      [['--port'], /port/],
      [['--port', '80a'], /--port must be a non-negative integer/],
      [['--min-cohort', '-1'], /--min-cohort/],
      [['--learning-rate', 'fast'], /--learning-rate must be a number/],
      [['--model', 'm:12'], /--model must look like/],
      [['--log-level', 'loud'], /--log-level/],
      [['positional'], /positional/],
    ] as const) {
      expect(() => parseStartArgs([...argv], {})).toThrow(UsageError)
      expect(() => parseStartArgs([...argv], {})).toThrow(pattern)
    }
    expect(parseStartArgs(['--help'], {})).toEqual({ help: true })
  })

  test('run: help exits 0, usage errors exit 2, invalid configuration surfaces its code', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    expect(await run(['--help'])).toBe(0)
    expect(await run(['start', '--help'])).toBe(0)
    expect(log.mock.calls.flat().join('\n')).toMatch(/Usage: hearth aggregator start/)
    expect(await run([])).toBe(1)
    expect(await run(['stop'])).toBe(2)
    expect(await run(['start', '--port', 'x'])).toBe(2)
    expect(error.mock.calls.flat().join('\n')).toMatch(/--port must be a non-negative integer/)
    const dir = tempDir()
    cleanups.push(dir.remove)
    await expect(run(['start', '--data-dir', dir.path, '--min-cohort', '5', '--max-cohort', '2'])).rejects.toMatchObject({
      code: 'HEARTH_ERR_INVALID_CONFIG',
    })
  })
})

describe('hearth aggregator start: the process', () => {
  test('listens on --port 0, serves, and stops cleanly on SIGINT', async () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const child = await spawnAggregator(['--port', '0', '--data-dir', dir.path])
    cleanups.push(() => {
      if (child.child.exitCode === null) child.child.kill('SIGKILL')
    })
    expect(child.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const health = await fetch(child.url + ROUTES.health)
    expect(await health.json()).toEqual({ status: 'ok', protocol: 1 })
    // Development defaults are announced, not silent.
    expect(child.output()).toMatch(/accepting the development key .+dev-app-key/)
    child.child.kill('SIGINT')
    expect(await child.exited).toEqual({ code: 0, signal: null })
  }, 90_000)
})
