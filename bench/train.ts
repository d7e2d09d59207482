/**
 * `npm run bench:train`: on-device training speed and IndexedDB throughput,
 * measured where they matter, in the Hearth worker in headless Chromium, from the production
 * bundle. The wasm and cpu backends run the same work in the same browser, so their ratio is
 * meaningful even on a noisy machine.
 */
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseCommand, parseFlags } from '../aggregator/cli/command.ts'
import { buildBrowserBundle, bundleIsStale } from '../demo/browser-bundle.ts'
import { startStaticServer } from '../demo/static-server.ts'
import { DEFAULT_MF_OPTIONS, mfSpec } from '../protocol/model-spec.ts'
import { launchChromium } from '../test/browser/chromium.ts'
import { positiveInteger } from './flags.ts'
import { BENCH_PAGE, trainBenchInPage } from './train-page.ts'
import type { BackendFigures, BenchConfig } from './train-page.ts'

const HELP = `Usage: npm run bench:train -- [options]

Measures, in the Hearth worker in headless Chromium: events written to and read from
IndexedDB per second, and training examples per second on the wasm and cpu backends.

Options:
  --events N     events written and read (default 20000)
  --examples N   examples per training run (default 8000)
  --repeats N    runs per figure; the median is reported (default 3)
  --json         print one JSON object instead of tables
  -h, --help     show this help`

const DIST = fileURLToPath(new URL('../dist/', import.meta.url))
const COMLINK = fileURLToPath(import.meta.resolve('comlink/dist/esm/comlink.mjs'))

/** The command line as a config, or `help`; throws `UsageError` on a bad one. */
function parse(argv: string[]): { readonly config: BenchConfig; readonly json: boolean } | 'help' {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    options: {
      events: { type: 'string' },
      examples: { type: 'string' },
      repeats: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) return 'help'
  const config: BenchConfig = {
    spec: mfSpec('bench', DEFAULT_MF_OPTIONS),
    events: positiveInteger(values.events, 20_000, 'events'),
    examples: positiveInteger(values.examples, 8_000, 'examples'),
    repeats: positiveInteger(values.repeats, 3, 'repeats'),
    backends: ['wasm', 'cpu'],
  }
  return { config, json: values.json === true }
}

/** Entry point of `hearth bench train`; returns the exit code (2 for a bad command line). */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('hearth bench train', HELP, () => parse(argv))
  if (typeof parsed === 'number') return parsed
  const { config, json } = parsed

  if (await bundleIsStale(DIST)) await buildBrowserBundle(DIST)
  const site = await startStaticServer(
    [{ prefix: '/hearth/', dir: DIST }, { prefix: '/vendor/', dir: dirname(COMLINK), index: false }],
    '127.0.0.1',
    0,
    (app) => app.get('/', async (_request, reply) => reply.type('text/html').send(BENCH_PAGE)),
  )
  const browser = await launchChromium()
  try {
    const page = await browser.newPage()
    // tsx compiles with esbuild's keepNames, whose `__name` helper the page does not have.
    await page.addInitScript('globalThis.__name = (f) => f')
    await page.goto(`${site.url}/`)
    const figures = await page.evaluate(trainBenchInPage, config)
    report(config, figures, browser.version(), json)
  } finally {
    await browser.close()
    await site.close()
  }
  return 0
}

function report(config: BenchConfig, figures: BackendFigures[], browserVersion: string, json: boolean): void {
  const [wasm, cpu] = figures
  const ratio = (a: number | undefined, b: number | undefined): number => (a ?? NaN) / (b ?? NaN)
  const summary = {
    browser: `Chromium ${browserVersion}`,
    spec: config.spec.options,
    events: config.events,
    examples: config.examples,
    repeats: config.repeats,
    figures,
    wasmOverCpu: {
      localTraining: ratio(wasm?.localExamplesPerSecond, cpu?.localExamplesPerSecond),
      roundTraining: ratio(wasm?.roundExamplesPerSecond, cpu?.roundExamplesPerSecond),
    },
  }
  if (json) {
    console.log(JSON.stringify(summary))
    return
  }
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
  console.log(`\nHearth worker in ${summary.browser}; model ${config.spec.architecture} ${JSON.stringify(config.spec.options)}; median of ${config.repeats}\n`)
  console.log('| backend | local training (Adam, all weights) ex/s | round training (SGD, federated) ex/s | IndexedDB write events/s | IndexedDB read events/s |')
  console.log('|---|---|---|---|---|')
  for (const f of figures) {
    console.log(`| ${f.backend} | ${fmt(f.localExamplesPerSecond)} | ${fmt(f.roundExamplesPerSecond)} | ${fmt(f.writeEventsPerSecond)} | ${fmt(f.readEventsPerSecond)} |`)
  }
  console.log(`| **wasm / cpu** | **${summary.wasmOverCpu.localTraining.toFixed(2)}x** | **${summary.wasmOverCpu.roundTraining.toFixed(2)}x** | | |`)
  console.log(`\n${config.events.toLocaleString('en-US')} events written in one transaction and read back; ${config.examples.toLocaleString('en-US')} examples per training run.`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await run(process.argv.slice(2))
}
