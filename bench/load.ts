/**
 * `npm run bench:load`: the aggregator under many connected devices. For each configuration
 * (1,000 and 10,000 connected devices by default) a fresh aggregator runs as a child process on
 * 127.0.0.1 (SQLite in a temporary directory); simulated devices (`load-fleet.ts`) in a few
 * child processes of their own connect, check in and upload a precomputed delta whenever they
 * are selected, for rounds of `--cohort` (min and max cohort alike, so a round publishes only if
 * every participant's upload arrives). Reported: devices held, rounds published and aborted
 * (with reasons), p50/p99 of each stage's latency (see `load-report.ts` for what each covers),
 * and the aggregator's CPU and memory.
 *
 *   npm run bench:load                                     # plain, 1,000 and 10,000 devices
 *   npm run bench:load -- --clients 2000 --rounds 3 --json
 *   npm run bench:load -- --aggregation secagg --clients 1000 --cohort 100
 *
 * Every process opens one descriptor per socket: the aggregator holds `clients` of them and each
 * device process `clients / --processes`, within `ulimit -n` (checked before starting). Figures
 * go to bench/RESULTS.md, section "Load".
 */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { parseCommand, parseFlags, UsageError } from '../aggregator/cli/command.ts'
import { nonNegativeInteger, positiveInteger } from './flags.ts'
import { AggregatorProcess } from './load-aggregator.ts'
import type { ProcessSample } from './load-aggregator.ts'
import { DeviceWorkers, LocalDevices } from './load-workers.ts'
import type { Devices } from './load-workers.ts'
import type { LoadFigures } from './load-report.ts'
import { summarize, table } from './load-report.ts'
import { Progress } from './progress.ts'

const HELP = `Usage: npm run bench:load -- [options]

Runs the aggregator as a child process and holds simulated WebSocket devices on it, running
rounds; prints devices held, rounds, p50/p99 stage latencies and the aggregator's CPU and memory.

Options:
  --clients N,N,...     connected devices per configuration (default 1000,10000)
  --cohort N            devices per round: min and max cohort (default 1000; 100 with secagg)
  --rounds N            rounds measured per configuration (default 5)
  --max-seconds S       time bound of each configuration's rounds (default 120)
  --aggregation MODE    plain (default) or secagg
  --model NAME:BxD      model served (default tiny:4x2: 18 weights)
  --processes N         device processes (default 2; 0 runs the devices in this process)
  --train-ms MS         devices upload after a uniform random delay in [0, MS) (default 0)
  --pause MS            the aggregator's pause between rounds (default 500)
  --upload-timeout MS   the aggregator's upload deadline (default 60000)
  --json                print one JSON array instead of the table
  -h, --help            show this help`

export interface LoadConfig {
  readonly clients: number
  readonly cohort: number
  readonly rounds: number
  readonly maxSeconds: number
  readonly aggregation: 'plain' | 'secagg'
  readonly model: string
  /** Device processes; 0 runs the devices in this process. */
  readonly processes: number
  readonly trainMs: number
  readonly pauseMs: number
  readonly uploadTimeoutMs: number
  /** Progress lines on stderr (off in tests). */
  readonly quiet?: boolean
}

/** Descriptors each process may open, from /proc/self/limits (children inherit it). */
function openFileLimit(): number {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return match?.[1] === undefined ? Infinity : Number(match[1])
  } catch {
    return Infinity
  }
}

/** Room for the store, the log pipes, Node's own descriptors and the listening socket. */
const FD_HEADROOM = 200
/** Handshakes in flight per device process: well under the listen backlog (511 by default in Node). */
const CONNECT_CONCURRENCY = 128
/** How often the aggregator's CPU and RSS are sampled, and its rounds polled. */
const TICK_MS = 500

/** Runs one configuration against a fresh aggregator and returns its figures. */
export async function runLoad(config: LoadConfig): Promise<LoadFigures> {
  const limit = openFileLimit()
  if (config.clients + FD_HEADROOM > limit) {
    throw new RangeError(`--clients ${config.clients} needs more than the ${limit} open files \`ulimit -n\` allows the aggregator; raise it (ulimit -n ${config.clients + FD_HEADROOM})`)
  }
  const modelName = config.model.split(':')[0] as string
  const aggregator = await AggregatorProcess.start({
    model: config.model,
    minCohort: config.cohort,
    maxCohort: config.cohort,
    // Selection closes as soon as maxCohort wait; the deadline only matters if devices are lost.
    selectionTimeoutMs: 10_000,
    uploadTimeoutMs: config.uploadTimeoutMs,
    pauseMs: config.pauseMs,
    aggregation: config.aggregation,
  })
  let workers: Devices | undefined
  const samples: ProcessSample[] = []
  let ticker: NodeJS.Timeout | undefined
  try {
    const loadStart = os.loadavg()[0] as number
    const progress = config.quiet === true ? undefined : new Progress(`connect ${config.clients}`, config.clients)
    const onProgress = (n: number): void => progress?.update(n)
    workers = config.processes === 0 ? new LocalDevices(onProgress) : await DeviceWorkers.fork(Math.min(config.processes, config.clients), onProgress)
    const idle = await aggregator.sample()
    ticker = setInterval(() => {
      aggregator.sample().then((s) => samples.push(s), () => {})
    }, TICK_MS)
    const connectStartedAt = Date.now()
    await workers.connect({
      wsUrl: aggregator.wsUrl,
      appKey: aggregator.appKey,
      model: modelName,
      clients: config.clients,
      firstDevice: 0,
      connectConcurrency: CONNECT_CONCURRENCY,
      trainMs: config.trainMs,
    })
    const connectedAt = await aggregator.sample()
    const checkedIn = await workers.checkIn()
    const held = await aggregator.sample()
    progress?.update(config.clients, `${checkedIn.reduce((a, r) => a + r.checkedIn, 0)} checked in`)
    const lastCheckin = Math.max(...checkedIn.map((r) => r.lastCheckinSentAt))

    // Rounds run on their own; wait until enough of them, opened after the ramp, have ended.
    const bar = config.quiet === true ? undefined : new Progress(`rounds (${config.clients})`, config.rounds)
    const deadline = Date.now() + config.maxSeconds * 1000
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, TICK_MS))
      const records = await aggregator.rounds(modelName)
      const done = records.filter((r) => r.outcome !== null && r.createdAt >= lastCheckin).length
      bar?.update(done)
      if (done >= config.rounds || Date.now() > deadline) break
    }
    const end = await aggregator.sample()
    clearInterval(ticker)
    const records = await aggregator.rounds(modelName)
    const heldByAggregator = await aggregator.metric('hearth_connected_clients')
    const fleets = await workers.reports()
    return summarize({
      aggregation: config.aggregation,
      clients: config.clients,
      cohort: config.cohort,
      connectStartedAt,
      fleets,
      records,
      heldByAggregator,
      idle,
      connected: connectedAt,
      held,
      end,
      samples,
      loadAverage: [loadStart, os.loadavg()[0] as number],
    })
  } finally {
    clearInterval(ticker)
    await workers?.close()
    await aggregator.stop()
  }
}

/** The command line as one config per `--clients` count, or `help`; throws `UsageError` on a bad one. */
function parse(argv: string[]): { readonly configs: LoadConfig[]; readonly json: boolean } | 'help' {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    options: {
      clients: { type: 'string' },
      cohort: { type: 'string' },
      rounds: { type: 'string' },
      'max-seconds': { type: 'string' },
      aggregation: { type: 'string' },
      model: { type: 'string' },
      processes: { type: 'string' },
      'train-ms': { type: 'string' },
      pause: { type: 'string' },
      'upload-timeout': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) return 'help'
  const aggregation = values.aggregation ?? 'plain'
  if (aggregation !== 'plain' && aggregation !== 'secagg') throw new UsageError(`--aggregation must be plain or secagg, got ${aggregation}`)
  const model = values.model ?? 'tiny:4x2'
  if (!/^[^:]+(:\d+x\d+)?$/.test(model)) throw new UsageError(`--model must look like name or name:4x2, got ${model}`)
  const cohort = positiveInteger(values.cohort, aggregation === 'secagg' ? 100 : 1000, 'cohort')
  const clients = (values.clients ?? '1000,10000').split(',').map((c) => positiveInteger(c.trim(), 0, 'clients'))
  const small = clients.find((c) => c < cohort)
  if (small !== undefined) throw new UsageError(`--clients ${small} is fewer than --cohort ${cohort}: no round could open`)
  const configs = clients.map((n): LoadConfig => ({
    clients: n,
    cohort,
    rounds: positiveInteger(values.rounds, 5, 'rounds'),
    maxSeconds: positiveInteger(values['max-seconds'], 120, 'max-seconds'),
    aggregation,
    model,
    processes: nonNegativeInteger(values.processes, 2, 'processes'),
    trainMs: nonNegativeInteger(values['train-ms'], 0, 'train-ms'),
    pauseMs: nonNegativeInteger(values.pause, 500, 'pause'),
    uploadTimeoutMs: positiveInteger(values['upload-timeout'], 60_000, 'upload-timeout'),
  }))
  return { configs, json: values.json === true }
}

/** Entry point of `npm run bench:load`; returns the exit code (2 for a bad command line). */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('npm run bench:load', HELP, () => parse(argv))
  if (typeof parsed === 'number') return parsed
  const { configs, json } = parsed

  const started = Date.now()
  const rows: LoadFigures[] = []
  for (const config of configs) {
    Progress.note(`${config.aggregation}: ${config.clients} devices, cohort ${config.cohort}, ${config.rounds} rounds (at most ${config.maxSeconds} s)`)
    rows.push(await runLoad(config))
  }
  if (json) {
    console.log(JSON.stringify(rows))
  } else {
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
    const model = configs[0]?.model ?? ''
    console.log(`\nLoad — ${new Date().toISOString().slice(0, 16)}Z, Node ${process.version}, ${cpu}, ${os.cpus().length} cores, model ${model}, ${((Date.now() - started) / 60_000).toFixed(1)} min\n`)
    console.log(table(rows))
    for (const row of rows) {
      const notes = [
        Object.keys(row.abortReasons).length > 0 ? `aborted: ${JSON.stringify(row.abortReasons)}` : '',
        Object.keys(row.failures).length > 0 ? `connection failures: ${JSON.stringify(row.failures)}` : '',
        Object.keys(row.roundErrors).length > 0 ? `errors in rounds: ${JSON.stringify(row.roundErrors)}` : '',
        row.warmupRounds > 0 ? `${row.warmupRounds} round(s) during the connect ramp not counted` : '',
      ].filter((n) => n !== '')
      console.log(`\n${row.aggregation} ${row.clients}: ${row.roundsPerMinute.toFixed(1)} rounds/min over ${row.measuredSeconds.toFixed(0)} s; device processes ${row.devicesCpuPercent.toFixed(0)}% of a core${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`)
    }
  }
  // Every configuration must have held its devices and completed at least one round.
  return rows.every((r) => r.published >= 1 && r.held === r.clients) ? 0 : 1
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await run(process.argv.slice(2))
}
