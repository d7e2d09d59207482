/**
 * `npm run bench:rank`: how long `hearth.rank()` takes for 1,000 candidates in headless
 * Chromium, through the real page API (comlink to the production worker), and how much of that
 * the worker itself spends. Target (issue 4): under 20 ms.
 *
 * Baselines, measured in the same run (the machine is shared, so figures from different runs do
 * not compare): plain JavaScript dot products of every candidate followed by a sort; and, with
 * `--compare-ref REF`, the same page on the build of another commit, its blocks of calls
 * interleaved with this build's (order alternating), so that both see the same load.
 *
 * Two candidate scenarios, interleaved too: the same 1,000 ids on every call (a feed ranked
 * again: the worker reuses what it computed) and 1,000 ids never ranked before on every call
 * (nothing can be reused).
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Browser, Page } from 'playwright-core'
import { parseCommand, parseFlags } from '../aggregator/cli/command.ts'
import { startAggregator } from '../aggregator/server.ts'
import { buildBrowserBundle, bundleIsStale } from '../demo/browser-bundle.ts'
import { startStaticServer } from '../demo/static-server.ts'
import type { StaticServer } from '../demo/static-server.ts'
import { DEFAULT_MF_OPTIONS } from '../protocol/model-spec.ts'
import { launchChromium } from '../test/browser/chromium.ts'
import { positiveInteger } from './flags.ts'
import { finishRankPage, RANK_PAGE, rankBlockInPage, setUpRankPage, TIMING_HOOKS, TIMING_WORKER } from './rank-page.ts'
import type { RankBlockFigures, RankPageInfo, RankPageSummary } from './rank-page.ts'
import { quantile } from './stats.ts'

const HELP = `Usage: npm run bench:rank -- [options]

Times hearth.rank() of N candidates in headless Chromium: on the page (through comlink) and in
the worker, for the same candidates every call and for new candidates every call, with a
plain-JavaScript dot-product-and-sort baseline from the same page.

Options:
  --candidates N     candidates per call (default 1000)
  --calls N          timed calls per scenario, after 20 warm-up calls (default 200)
  --compare-ref REF  also time the build of git commit REF (e.g. HEAD), interleaved with this one
  --json             print one JSON object instead of the tables
  -h, --help         this text`

const ROOT = fileURLToPath(new URL('..', import.meta.url))
// A build of its own under bench/out: other tools rebuild dist/ at any time.
const DIST = fileURLToPath(new URL('./out/dist/', import.meta.url))
const APP_KEY = 'bench-rank'
const WARMUP = 20
/** Calls per block: blocks of the builds and scenarios alternate. */
const BLOCK = 10
const SCENARIOS = [
  { name: 'same', fresh: false, what: 'the same candidates every call' },
  { name: 'fresh', fresh: true, what: 'new candidates every call' },
] as const

type ScenarioName = (typeof SCENARIOS)[number]['name']

interface Config {
  readonly candidates: number
  readonly calls: number
  readonly compareRef: string | null
  readonly json: boolean
}

interface Timings {
  readonly pageMs: number[]
  readonly workerMs: number[]
  readonly reasons: Record<string, number>
  minPropensity: number
}

interface BuildRun {
  readonly label: string
  readonly page: Page
  readonly site: StaticServer
  info: RankPageInfo
  readonly timings: Record<ScenarioName, Timings>
  summary?: RankPageSummary
}

function summarize(values: readonly number[]): { median: number; p95: number } {
  return { median: quantile(values, 0.5), p95: quantile(values, 0.95) }
}

/**
 * Runs `use` on the sources of commit `ref`, from `git archive` (the working tree is not
 * touched) into a temporary folder with this checkout's node_modules; removed afterwards.
 */
export async function withRefSources<T>(ref: string, use: (root: string) => Promise<T>): Promise<T> {
  const run = promisify(execFile)
  const source = await mkdtemp(join(tmpdir(), 'hearth-bench-ref-'))
  try {
    const archive = join(source, 'source.tar')
    await run('git', ['-C', ROOT, 'archive', '--format=tar', '-o', archive, ref])
    await run('tar', ['-xf', archive, '-C', source])
    await symlink(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir')
    return await use(source)
  } finally {
    await rm(source, { recursive: true, force: true })
  }
}

/** Builds commit `ref` into `outDir` with that commit's own build script. */
async function buildRef(ref: string, outDir: string): Promise<void> {
  await withRefSources(ref, async (source) => {
    const { buildBrowserBundle: buildThere } = (await import(join(source, 'demo/browser-bundle.ts'))) as { buildBrowserBundle: (dir: string) => Promise<void> }
    await mkdir(outDir, { recursive: true })
    await buildThere(outDir)
  })
}

/** One origin per build, so that each page has its own IndexedDB and BroadcastChannel. */
async function openBuild(browser: Browser, label: string, dist: string, aggregatorUrl: string): Promise<BuildRun> {
  const site = await startStaticServer(
    [
      { prefix: '/hearth/', dir: dist },
      { prefix: '/bench/', dir: dist, index: false },
    ],
    '127.0.0.1',
    0,
    (app) => {
      app.get('/', async (_request, reply) => reply.type('text/html').send(RANK_PAGE))
      app.get('/bench/hearth.worker.js', async (_request, reply) => reply.type('text/javascript').send(TIMING_WORKER('/bench/timing-hooks.js', '/hearth/hearth.worker.js')))
      app.get('/bench/timing-hooks.js', async (_request, reply) => reply.type('text/javascript').send(TIMING_HOOKS))
    },
  )
  const page = await browser.newPage()
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning' || message.text().startsWith('[bench]')) console.error(`[${label}] ${message.text()} ${message.location().url}`)
  })
  page.on('pageerror', (error) => console.error(`[${label}] ${error.message}`))
  page.on('response', (response) => {
    if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) console.error(`[${label}] ${response.status()} ${response.url()}`)
  })
  // tsx compiles with esbuild's keepNames, whose `__name` helper the page does not have.
  await page.addInitScript('globalThis.__name = (f) => f')
  await page.goto(`${site.url}/`)
  const info = await page.evaluate(setUpRankPage, { aggregatorUrl, appKey: APP_KEY, assetsBaseUrl: `${site.url}/bench/`, historyItems: 100 })
  const empty = (): Timings => ({ pageMs: [], workerMs: [], reasons: {}, minPropensity: Infinity })
  return { label, page, site, info, timings: { same: empty(), fresh: empty() } }
}

function add(into: Timings, block: RankBlockFigures): void {
  into.pageMs.push(...block.pageMs)
  into.workerMs.push(...block.workerMs)
  for (const [kind, count] of Object.entries(block.reasons)) into.reasons[kind] = (into.reasons[kind] ?? 0) + count
  into.minPropensity = Math.min(into.minPropensity, block.minPropensity)
}

async function measure(config: Config): Promise<{ runs: BuildRun[]; browser: string }> {
  if (await bundleIsStale(DIST)) await buildBrowserBundle(DIST)
  const compareDist = fileURLToPath(new URL('./out/compare-dist/', import.meta.url))
  if (config.compareRef !== null) {
    await rm(compareDist, { recursive: true, force: true })
    await buildRef(config.compareRef, compareDist)
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'hearth-bench-rank-'))
  const aggregator = await startAggregator({ port: 0, dataDir, appKeys: [APP_KEY], models: [{ name: 'default', mf: DEFAULT_MF_OPTIONS }] })
  const browser = await launchChromium()
  const runs: BuildRun[] = []
  try {
    runs.push(await openBuild(browser, 'this build', DIST, aggregator.url))
    if (config.compareRef !== null) runs.push(await openBuild(browser, config.compareRef, compareDist, aggregator.url))
    for (const run of runs) for (const scenario of SCENARIOS) await run.page.evaluate(rankBlockInPage, { calls: WARMUP, candidates: config.candidates, fresh: scenario.fresh })
    for (let done = 0, round = 0; done < config.calls; done += BLOCK, round++) {
      const calls = Math.min(BLOCK, config.calls - done)
      // Alternate which build goes first, so that neither always follows the other's garbage.
      for (const run of round % 2 === 0 ? runs : [...runs].reverse()) {
        for (const scenario of SCENARIOS) add(run.timings[scenario.name], await run.page.evaluate(rankBlockInPage, { calls, candidates: config.candidates, fresh: scenario.fresh }))
      }
    }
    for (const run of runs) run.summary = await run.page.evaluate(finishRankPage, { calls: config.calls, candidates: config.candidates, dim: DEFAULT_MF_OPTIONS.dim })
    return { runs, browser: browser.version() }
  } finally {
    await browser.close()
    for (const run of runs) await run.site.close()
    await aggregator.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}

/** The command line as a config, or `help`; throws `UsageError` on a bad one. */
function parse(argv: string[]): Config | 'help' {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    options: { candidates: { type: 'string' }, calls: { type: 'string' }, 'compare-ref': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help === true) return 'help'
  return {
    candidates: positiveInteger(values.candidates, 1000, 'candidates'),
    calls: positiveInteger(values.calls, 200, 'calls'),
    compareRef: values['compare-ref'] ?? null,
    json: values.json === true,
  }
}

/** Entry point of `hearth bench rank`; returns the exit code (2 for a bad command line). */
export async function run(argv: string[]): Promise<number> {
  const config = parseCommand('hearth bench rank', HELP, () => parse(argv))
  if (typeof config === 'number') return config
  const { runs, browser } = await measure(config)
  const [current] = runs
  if (current?.summary === undefined) throw new Error('the benchmark page did not finish')
  const baseline = summarize(current.summary.baselineMs)
  const builds = runs.map((r) => ({
    build: r.label,
    backend: r.info.backend,
    modelVersion: r.info.modelVersion,
    decisionsLogged: r.summary?.decisionsLogged ?? null,
    scenarios: Object.fromEntries(
      SCENARIOS.map(({ name }) => {
        const t = r.timings[name]
        const page = summarize(t.pageMs)
        return [name, { calls: t.pageMs.length, pageMs: page, workerMs: summarize(t.workerMs), pageOverBaseline: page.median / baseline.median, reasons: t.reasons, minPropensity: t.minPropensity }]
      }),
    ) as Record<ScenarioName, { calls: number; pageMs: { median: number; p95: number }; workerMs: { median: number; p95: number }; pageOverBaseline: number; reasons: Record<string, number>; minPropensity: number }>,
  }))
  const summary = {
    browser: `Chromium ${browser}`,
    model: DEFAULT_MF_OPTIONS,
    candidates: config.candidates,
    calls: config.calls,
    baselineMs: baseline,
    builds,
    target: { ms: 20, met: builds[0] !== undefined && SCENARIOS.every(({ name }) => (builds[0]?.scenarios[name].pageMs.p95 ?? Infinity) < 20) },
  }
  if (config.json) {
    console.log(JSON.stringify(summary))
    return 0
  }
  const ms = (n: number): string => `${n.toFixed(1)} ms`
  console.log(`\nhearth.rank() of ${config.candidates} candidates, ${config.calls} calls per scenario and build after ${WARMUP} warm-up, in blocks of ${BLOCK} interleaved; ${summary.browser}, tfjs ${current.info.backend}, model dim ${DEFAULT_MF_OPTIONS.dim}, ${DEFAULT_MF_OPTIONS.buckets} buckets\n`)
  console.log('| build | candidates | on the page: median | p95 | in the worker: median | p95 |')
  console.log('|---|---|---|---|---|---|')
  for (const b of builds) {
    for (const { name, what } of SCENARIOS) {
      const s = b.scenarios[name]
      console.log(`| ${b.build} | ${what} | ${ms(s.pageMs.median)} | ${ms(s.pageMs.p95)} | ${ms(s.workerMs.median)} | ${ms(s.workerMs.p95)} |`)
    }
  }
  console.log(`| baseline: plain JS, ${config.candidates} dot products (dim ${DEFAULT_MF_OPTIONS.dim}) + sort | | ${ms(baseline.median)} | ${ms(baseline.p95)} | | |`)
  console.log('')
  const [mine, other] = builds
  for (const { name, what } of SCENARIOS) {
    const s = mine?.scenarios[name]
    if (s === undefined) continue
    const versus = other === undefined ? '' : `; ${other.build} / this build (page median): ${(other.scenarios[name].pageMs.median / s.pageMs.median).toFixed(1)}x, (page p95): ${(other.scenarios[name].pageMs.p95 / s.pageMs.p95).toFixed(1)}x`
    console.log(`${what}: page / plain-JS baseline (median) ${s.pageOverBaseline.toFixed(1)}x${versus}`)
  }
  console.log(`target p95 < 20 ms on the page, both scenarios: ${summary.target.met ? 'met' : 'not met'}`)
  for (const b of builds) {
    const reasons = SCENARIOS.map(({ name }) => `${name} ${JSON.stringify(b.scenarios[name].reasons)}`).join(', ')
    console.log(`${b.build}: reasons given: ${reasons}; smallest propensity ${Math.min(...SCENARIOS.map(({ name }) => b.scenarios[name].minPropensity))}; decisions in the log: ${b.decisionsLogged} (the log keeps the newest 200)`)
  }
  return 0
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await run(process.argv.slice(2))
}
