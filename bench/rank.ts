/**
 * `npm run bench:rank`: how long `hearth.rank()` takes for 1,000 candidates in headless
 * Chromium, through the real page API (comlink to the production worker), and how much of that
 * the worker itself spends, against a baseline measured in the same page and run: plain
 * JavaScript dot products of every candidate followed by a sort. Target (issue 4): under 20 ms.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startAggregator } from '../aggregator/server.ts'
import { buildBrowserBundle, bundleIsStale } from '../demo/browser-bundle.ts'
import { startStaticServer } from '../demo/static-server.ts'
import { DEFAULT_MF_OPTIONS } from '../protocol/model-spec.ts'
import { launchChromium } from '../test/browser/chromium.ts'
import { RANK_PAGE, rankBenchInPage, TIMING_HOOKS, TIMING_WORKER } from './rank-page.ts'
import type { RankBenchConfig, RankBenchFigures } from './rank-page.ts'

const HELP = `Usage: npm run bench:rank -- [options]

Times hearth.rank() of N candidates in headless Chromium: on the page (through comlink) and in
the worker, with a plain-JavaScript dot-product-and-sort baseline from the same page.

Options:
  --candidates N   candidates per call (default 1000)
  --calls N        timed calls, after 20 warm-up calls (default 200)
  --json           print one JSON object instead of the table
  -h, --help       this text`

// A build of its own under bench/out: other tools rebuild dist/ at any time.
const DIST = fileURLToPath(new URL('./out/dist/', import.meta.url))
const APP_KEY = 'bench-rank'

function positive(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got ${value}`)
  return n
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}

/** Serves the bundle at /hearth/ and, at /bench/, the timing worker with the bundle's wasm/. */
async function measure(config: Omit<RankBenchConfig, 'aggregatorUrl' | 'assetsBaseUrl' | 'appKey'>): Promise<{ figures: RankBenchFigures; browser: string }> {
  if (await bundleIsStale(DIST)) await buildBrowserBundle(DIST)
  const dataDir = await mkdtemp(join(tmpdir(), 'hearth-bench-rank-'))
  const aggregator = await startAggregator({ port: 0, dataDir, appKeys: [APP_KEY], models: [{ name: 'default', mf: DEFAULT_MF_OPTIONS }] })
  const site = await startStaticServer(
    [
      { prefix: '/hearth/', dir: DIST },
      { prefix: '/bench/', dir: DIST, index: false },
    ],
    '127.0.0.1',
    0,
    (app) => {
      app.get('/', async (_request, reply) => reply.type('text/html').send(RANK_PAGE))
      app.get('/bench/hearth.worker.js', async (_request, reply) => reply.type('text/javascript').send(TIMING_WORKER('/bench/timing-hooks.js', '/hearth/hearth.worker.js')))
      app.get('/bench/timing-hooks.js', async (_request, reply) => reply.type('text/javascript').send(TIMING_HOOKS))
    },
  )
  const browser = await launchChromium()
  try {
    const page = await browser.newPage()
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning' || message.text().startsWith('[bench]')) console.error(`[page] ${message.text()} ${message.location().url}`)
    })
    page.on('pageerror', (error) => console.error(`[page] ${error.message}`))
    page.on('response', (response) => {
      if (response.status() >= 400) console.error(`[page] ${response.status()} ${response.url()}`)
    })
    // tsx compiles with esbuild's keepNames, whose `__name` helper the page does not have.
    await page.addInitScript('globalThis.__name = (f) => f')
    await page.goto(`${site.url}/`)
    const figures = await page.evaluate(rankBenchInPage, { ...config, aggregatorUrl: aggregator.url, appKey: APP_KEY, assetsBaseUrl: `${site.url}/bench/` })
    return { figures, browser: browser.version() }
  } finally {
    await browser.close()
    await site.close()
    await aggregator.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}

function summarize(values: readonly number[]): { median: number; p95: number } {
  return { median: quantile(values, 0.5), p95: quantile(values, 0.95) }
}

export async function run(argv: string[]): Promise<number> {
  let config: Omit<RankBenchConfig, 'aggregatorUrl' | 'assetsBaseUrl' | 'appKey'>
  let json = false
  try {
    const { values } = parseArgs({ args: argv, strict: true, options: { candidates: { type: 'string' }, calls: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } })
    if (values.help === true) {
      console.log(HELP)
      return 0
    }
    json = values.json === true
    config = { candidates: positive(values.candidates, 1000, 'candidates'), calls: positive(values.calls, 200, 'calls'), warmup: 20, historyItems: 100, dim: DEFAULT_MF_OPTIONS.dim }
  } catch (error) {
    console.error(`bench:rank: ${(error as Error).message}\n\n${HELP}`)
    return 2
  }
  const { figures, browser } = await measure(config)
  const page = summarize(figures.pageMs)
  const worker = summarize(figures.workerMs)
  const baseline = summarize(figures.baselineMs)
  const summary = {
    browser: `Chromium ${browser}`,
    backend: figures.backend,
    model: { ...DEFAULT_MF_OPTIONS, version: figures.modelVersion },
    candidates: config.candidates,
    calls: figures.pageMs.length,
    pageMs: page,
    workerMs: worker,
    baselineMs: baseline,
    pageOverBaseline: page.median / baseline.median,
    reasons: figures.reasons,
    decisionsLogged: figures.decisionsLogged,
    target: { ms: 20, met: page.p95 < 20 },
  }
  if (json) {
    console.log(JSON.stringify(summary))
    return 0
  }
  const ms = (n: number): string => `${n.toFixed(2)} ms`
  console.log(`\nhearth.rank() of ${config.candidates} candidates, ${summary.calls} calls after 20 warm-up; ${summary.browser}, tfjs ${figures.backend}, model dim ${DEFAULT_MF_OPTIONS.dim}, ${DEFAULT_MF_OPTIONS.buckets} buckets\n`)
  console.log('| what | median | p95 |')
  console.log('|---|---|---|')
  console.log(`| hearth.rank() on the page (comlink round trip) | ${ms(page.median)} | ${ms(page.p95)} |`)
  console.log(`| in the worker (request in → reply posted) | ${ms(worker.median)} | ${ms(worker.p95)} |`)
  console.log(`| baseline: plain JS, ${config.candidates} dot products (dim ${config.dim}) + sort | ${ms(baseline.median)} | ${ms(baseline.p95)} |`)
  console.log(`\npage / baseline (median): ${summary.pageOverBaseline.toFixed(1)}x; target p95 < 20 ms: ${summary.target.met ? 'met' : 'not met'}`)
  console.log(`reasons given: ${JSON.stringify(figures.reasons)}; decisions in the log: ${figures.decisionsLogged} (the log keeps the newest 200)`)
  return 0
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await run(process.argv.slice(2))
}
