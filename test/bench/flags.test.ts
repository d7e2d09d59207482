/**
 * The benchmark commands' command lines (bench/train.ts, rank.ts, round-rows.ts, load.ts,
 * secagg.ts): a bad flag or number exits with 2 and the usage on stderr before anything heavy
 * starts. What they would start — a bundle build, a static server, Chromium, an aggregator, device
 * processes, TensorFlow.js, a secure-aggregation simulation — is replaced by stubs that record
 * the call and throw; on a bad command line none may be called, on a good one the first is.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import type { MockInstance } from 'vitest'
import { nonNegativeInteger, oneOf, positiveInteger, positiveNumber } from '../../bench/flags.ts'
import { run as runLoad } from '../../bench/load.ts'
import { run as runRank } from '../../bench/rank.ts'
import { run as runRound } from '../../bench/round-rows.ts'
import { run as runSecAgg } from '../../bench/secagg.ts'
import { run as runTrain } from '../../bench/train.ts'
import { UsageError } from '../../aggregator/cli/command.ts'

const { started, stub } = vi.hoisted(() => {
  const started: string[] = []
  /** What a command would start: records `what` and throws, so nothing heavy runs. */
  const stub =
    (what: string) =>
    async (): Promise<never> => {
      started.push(what)
      throw new Error(`${what} started`)
    }
  return { started, stub }
})

vi.mock('../../demo/browser-bundle.ts', () => ({ bundleIsStale: stub('bundle check') }))
vi.mock('../../demo/static-server.ts', () => ({ startStaticServer: stub('static server') }))
vi.mock('../../test/browser/chromium.ts', () => ({ launchChromium: stub('Chromium') }))
vi.mock('../../aggregator/server.ts', () => ({ startAggregator: stub('aggregator') }))
vi.mock('../../bench/load-aggregator.ts', () => ({ AggregatorProcess: { start: stub('aggregator process') } }))
vi.mock('../../bench/load-workers.ts', () => ({
  DeviceWorkers: { fork: stub('device processes') },
  LocalDevices: class {
    constructor() {
      started.push('local devices')
      throw new Error('local devices started')
    }
  },
}))
vi.mock('../../bench/secagg-sim.ts', () => ({ simulateSecAgg: stub('secure aggregation') }))
vi.mock('../../bench/node-tfjs.ts', () => ({
  installTfjsNodeResolver: () => {
    started.push('TensorFlow.js')
    throw new Error('TensorFlow.js started')
  },
}))

const COMMANDS = [
  { name: 'hearth bench train', usage: 'Usage: npm run bench:train', run: runTrain, good: [], first: 'bundle check', badNumbers: [['--repeats', '0'], ['--events', '1.5'], ['--examples', 'many']] },
  { name: 'hearth bench rank', usage: 'Usage: npm run bench:rank', run: runRank, good: [], first: 'bundle check', badNumbers: [['--calls', '0'], ['--candidates', '0.5']] },
  { name: 'npm run bench:round', usage: 'Usage: npm run bench:round', run: runRound, good: [], first: 'TensorFlow.js', badNumbers: [['--repeats', '0'], ['--buckets', '4096,0'], ['--dim', 'x']] },
  {
    name: 'npm run bench:load',
    usage: 'Usage: npm run bench:load',
    run: runLoad,
    good: ['--clients', '20', '--cohort', '10', '--processes', '0'],
    first: 'aggregator process',
    badNumbers: [['--rounds', '0'], ['--processes', '1.5'], ['--clients', '100,x', '--cohort', '10'], ['--clients', '10', '--cohort', '100'], ['--aggregation', 'fast'], ['--model', 'tiny:4']],
  },
  { name: 'npm run bench:secagg', usage: 'Usage: npm run bench:secagg', run: runSecAgg, good: [], first: 'secure aggregation', badNumbers: [['--n', '0'], ['--m', '1e-3'], ['--dropout', '1'], ['--mode', 'plain'], ['--seed', '-1']] },
] as const

describe.each(COMMANDS)('$name', ({ name, usage, run, good, first, badNumbers }) => {
  let errors: MockInstance<typeof console.error>
  beforeEach(() => {
    started.length = 0
    errors = vi.spyOn(console, 'error').mockImplementation(() => undefined)
  })
  afterEach(() => errors.mockRestore())

  test('a good command line gets as far as the first stub (the stubs are the ones it calls)', async () => {
    const progress = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      await expect(run([...good])).rejects.toThrow()
    } finally {
      progress.mockRestore()
    }
    expect(started).toEqual([first])
  }, 5_000)

  test('an unknown flag or a missing value exits with 2, the usage on stderr, nothing started', async () => {
    expect(await run(['--bogus'])).toBe(2)
    expect(await run(['extra'])).toBe(2)
    expect(errors.mock.calls.map(([message]) => String(message))).toEqual([
      expect.stringMatching(new RegExp(`^${name}: Unknown option '--bogus'[\\s\\S]*\\n\\n${usage} `)),
      expect.stringMatching(new RegExp(`^${name}: Unexpected argument 'extra'[\\s\\S]*\\n\\n${usage} `)),
    ])
    expect(started).toEqual([])
  }, 5_000)

  test('a bad number or value exits with 2, naming the flag, the usage on stderr, nothing started', async () => {
    for (const argv of badNumbers) expect(await run([...argv]), argv.join(' ')).toBe(2)
    const messages = errors.mock.calls.map(([message]) => String(message))
    expect(messages).toHaveLength(badNumbers.length)
    for (const [i, argv] of badNumbers.entries()) {
      expect(messages[i]).toMatch(new RegExp(`^${name}: `))
      expect(messages[i]).toContain(argv[0])
      expect(messages[i]).toContain(`\n\n${usage} `)
    }
    expect(started).toEqual([])
  }, 5_000)

  test('--help prints the usage on stdout and exits with 0, nothing started', async () => {
    const out = vi.spyOn(console, 'log').mockImplementation(() => undefined)
    try {
      expect(await run(['--help'])).toBe(0)
      expect(await run(['-h'])).toBe(0)
      expect(out.mock.calls.map(([message]) => String(message).split('\n')[0])).toEqual([`${usage} -- [options]`, `${usage} -- [options]`])
    } finally {
      out.mockRestore()
    }
    expect(errors).not.toHaveBeenCalled()
    expect(started).toEqual([])
  }, 5_000)
})

describe('integer flags', () => {
  test('are the default when absent, the number when valid, a UsageError naming the flag otherwise', () => {
    expect(positiveInteger(undefined, 7, 'n')).toBe(7)
    expect(positiveInteger('3', 7, 'n')).toBe(3)
    expect(nonNegativeInteger('0', 7, 'n')).toBe(0)
    for (const bad of ['0', '-1', '1.5', 'x', '']) expect(() => positiveInteger(bad, 7, 'n')).toThrow(UsageError)
    for (const bad of ['-1', '1.5', 'x']) expect(() => nonNegativeInteger(bad, 7, 'n')).toThrow(UsageError)
    expect(() => positiveInteger('0', 7, 'repeats')).toThrow('--repeats must be a positive integer, got 0')
  })

  test('numbers and choices: the default when absent, the value when valid, a UsageError naming the flag otherwise', () => {
    expect(positiveNumber(undefined, 0.5, 'lr')).toBe(0.5)
    expect(positiveNumber('1e-3', 0.5, 'lr')).toBe(0.001)
    for (const bad of ['0', '-1', 'Infinity', 'x', '']) expect(() => positiveNumber(bad, 0.5, 'lr')).toThrow(UsageError)
    expect(() => positiveNumber('0', 0.5, 'lr')).toThrow('--lr must be a positive number, got 0')
    expect(oneOf(undefined, ['sgd', 'adam'], 'optimizer')).toBeUndefined()
    expect(oneOf('adam', ['sgd', 'adam'], 'optimizer')).toBe('adam')
    expect(() => oneOf('rmsprop', ['sgd', 'adam'], 'optimizer')).toThrow('--optimizer must be one of sgd, adam, got rmsprop')
  })
})
