/**
 * `hearth demo` (what `npm start` runs): the aggregator on its embedded SQLite store, the demo
 * app on 127.0.0.1, and simulated devices, so that rounds happen while you watch. Ctrl-C stops
 * everything cleanly.
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startAggregator } from '../aggregator/server.ts'
import { DEV_APP_KEY } from '../aggregator/options.ts'
import { buildBrowserBundle, bundleIsStale } from './browser-bundle.ts'
import { startDemoServer } from './demo-server.ts'
import { startSimulatedDevices } from './simulated-devices.ts'

const HELP = `Usage: hearth demo [options]     (npm start -- [options])

Starts the aggregator, the demo app and simulated devices on this machine.

Options:
  --clients N        simulated devices (default 20)
  --port P           aggregator port (default 8787)
  --demo-port P      demo app port (default 5173)
  --host H           interface for both servers (default 127.0.0.1)
  --data-dir D       aggregator data directory (default .hearth)
  --min-cohort N     fewest devices a round needs (default 3)
  --max-cohort N     most devices selected per round (default 10)
  --seed S           seeds the simulated devices' tastes (default 1)
  --rebuild          rebuild the browser bundle even if it is up to date
  -h, --help         show this help`

const DIST = fileURLToPath(new URL('../dist/', import.meta.url))

function integer(value: string | undefined, fallback: number, name: string, min = 0): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${value}`)
  return n
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string' },
      port: { type: 'string' },
      'demo-port': { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      'min-cohort': { type: 'string' },
      'max-cohort': { type: 'string' },
      seed: { type: 'string' },
      rebuild: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) {
    console.log(HELP)
    return 0
  }
  let clients: number, port: number, demoPort: number, minCohort: number, maxCohort: number, seed: number
  try {
    clients = integer(values.clients, 20, 'clients')
    port = integer(values.port, 8787, 'port')
    demoPort = integer(values['demo-port'], 5173, 'demo-port')
    minCohort = integer(values['min-cohort'], 3, 'min-cohort', 1)
    maxCohort = integer(values['max-cohort'], 10, 'max-cohort', 1)
    seed = integer(values.seed, 1, 'seed')
  } catch (error) {
    console.error(`hearth demo: ${(error as Error).message}\n\n${HELP}`)
    return 2
  }
  const host = values.host ?? '127.0.0.1'

  if (values.rebuild === true || (await bundleIsStale(DIST))) {
    console.log('Building the browser bundle…')
    await buildBrowserBundle(DIST)
  }

  const aggregator = await startAggregator({
    host,
    port,
    dataDir: resolve(values['data-dir'] ?? '.hearth'),
    // Secure aggregation: the aggregator sees only each group's sum (aggregator/README.md).
    rounds: { minCohort, maxCohort, selectionTimeoutMs: 3_000, uploadTimeoutMs: 30_000, pauseMs: 4_000, aggregation: 'secagg' },
    // Every simulated device and the page share 127.0.0.1, so the per-address limit is scaled to
    // them: a minute's budget of one request a second each.
    rateLimit: { max: 60 * (clients + 1), timeWindowMs: 60_000 },
    logger: { level: 'warn' },
  })
  const demo = await startDemoServer({ distDir: DIST, aggregatorUrl: aggregator.url, appKey: DEV_APP_KEY, host, port: demoPort })
  console.log(`\n  Hearth demo:        ${demo.url}/`)
  console.log(`  Aggregator:         ${aggregator.url}  (rounds: ${aggregator.url}/admin/rounds)`)
  console.log(`  Dashboard:          ${aggregator.url}/dashboard/`)
  console.log(`  Simulated devices:  ${clients} (starting…)\n  Press Ctrl-C to stop.\n`)

  const published = new Set<number>()
  const devices = await startSimulatedDevices({
    count: clients,
    aggregatorUrl: aggregator.url,
    appKey: DEV_APP_KEY,
    seed,
    onRound: (_device, detail) => {
      if (detail.status === 'published' && detail.version !== undefined && !published.has(detail.roundId)) {
        published.add(detail.roundId)
        console.log(`  round ${detail.roundId} published model version ${detail.version}`)
      }
    },
    onError: (device, error) => console.warn(`  device ${device}: ${error.message}`),
  })
  console.log(`  ${devices.devices.length} simulated devices connected; rounds start when ${minCohort} are waiting.`)

  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      console.log('\n  Stopping…')
      done()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
  await devices.close()
  await Promise.all([demo.close(), aggregator.close()])
  console.log('  Stopped.')
  return 0
}
