/**
 * The in-page half of `bench:rank`. The functions exported here run in Chromium through
 * `page.evaluate`, so they may use nothing from this module's scope; `TIMING_WORKER` is the
 * source of the worker script the page starts instead of `hearth.worker.js`.
 *
 * A page is set up once (`setUpRankPage`), then timed in blocks of calls (`rankBlockInPage`) so
 * that `bench/rank.ts` can interleave the blocks of two builds, and of the two candidate
 * scenarios, in one run on one machine: whatever else loads the machine loads both alike.
 */
import type { HearthGlobal } from '../client/script-tag.ts'

export interface RankPageSetup {
  readonly aggregatorUrl: string
  readonly appKey: string
  /** Where the timing worker and the `wasm/` folder are served (ends with `/`). */
  readonly assetsBaseUrl: string
  readonly historyItems: number
}

export interface RankPageInfo {
  readonly backend: string
  readonly modelVersion: number | null
}

/** One block of timed calls. */
export interface RankBlock {
  readonly calls: number
  readonly candidates: number
  /**
   * False: the same candidates every call (`item-0` …), as a feed ranked again. True: ids never
   * ranked before on every call, so that nothing computed for earlier calls can be reused.
   */
  readonly fresh: boolean
}

export interface RankBlockFigures {
  /** `await hearth.rank(candidates)` on the page, through comlink, in ms. */
  readonly pageMs: readonly number[]
  /** From the rank request reaching the worker to its reply being posted, in ms. */
  readonly workerMs: readonly number[]
  readonly reasons: Readonly<Record<string, number>>
  /** Smallest propensity of any ranked item in the block (a check: each lies in (0, 1]). */
  readonly minPropensity: number
}

export interface RankPageSummary {
  /** Plain JavaScript: `dim`-wide dot products of every candidate, then a sort, in ms. */
  readonly baselineMs: readonly number[]
  readonly decisionsLogged: number
}

/** The channel the timing worker answers on (BroadcastChannel: the page never sees the Worker object). */
export const TIMING_CHANNEL = 'hearth-bench-rank'

/**
 * The timing worker: `TIMING_HOOKS` notes when each comlink request for `rank` (or
 * `rankColumns`, what the page calls since ranking answers with columns) arrives and when its
 * reply is posted, then the production worker loads unchanged. Comlink (`expose`) listens with
 * `addEventListener('message')` and answers with `postMessage({ ...value, id }, transfer)`, so
 * wrapping those two times exactly the worker's side of a call, after the request was
 * deserialized and before the reply is. Static imports, not `await import()`: a module worker
 * starts delivering messages once its script has run, and with a top-level await the page's
 * first request would arrive before comlink listens, and be lost.
 */
export const TIMING_WORKER = (hooksUrl: string, realWorkerUrl: string): string => `import ${JSON.stringify(hooksUrl)}
import ${JSON.stringify(realWorkerUrl)}
`

export const TIMING_HOOKS = `
const arrived = new Map()
const times = []
const listen = self.addEventListener.bind(self)
self.addEventListener = (type, listener, options) => {
  if (type !== 'message') return listen(type, listener, options)
  return listen(type, (event) => {
    const data = event.data
    if (data && data.type === 'APPLY' && Array.isArray(data.path) && (data.path[0] === 'rank' || data.path[0] === 'rankColumns')) arrived.set(data.id, performance.now())
    listener(event)
  }, options)
}
const post = self.postMessage.bind(self)
self.postMessage = (message, transfer) => {
  const start = message ? arrived.get(message.id) : undefined
  if (start !== undefined) {
    arrived.delete(message.id)
    times.push(performance.now() - start)
  }
  post(message, transfer)
}
const channel = new BroadcastChannel(${JSON.stringify(TIMING_CHANNEL)})
channel.onmessage = () => channel.postMessage(times.splice(0))
`

/** The bench page: the script-tag build, started by `setUpRankPage`. */
export const RANK_PAGE = '<!doctype html><meta charset="utf-8"><title>Hearth rank benchmark</title><script src="/hearth/hearth.iife.js"></script>'

/** Starts Hearth on the page (kept on `window`) and gives it a history and a fitted user vector. */
export async function setUpRankPage(config: RankPageSetup): Promise<RankPageInfo> {
  const Hearth = (window as unknown as { Hearth: HearthGlobal }).Hearth
  const hearth = await Hearth.init({ aggregatorUrl: config.aggregatorUrl, appKey: config.appKey, federated: false, assetsBaseUrl: config.assetsBaseUrl, training: false, serviceWorker: false })
  ;(window as unknown as { benchHearth: typeof hearth }).benchHearth = hearth
  const kinds = ['view', 'click', 'like', 'purchase'] as const
  for (let i = 0; i < config.historyItems * 3; i++) hearth.record({ item: `item-${(i * 7) % config.historyItems}`, kind: kinds[i % kinds.length] as (typeof kinds)[number] })
  await hearth.flush()
  // Fits the user vector, so that the personal term and "similar" reasons are computed.
  await hearth.train({ epochs: 2 })
  return { backend: hearth.backend, modelVersion: hearth.modelVersion }
}

/** Times `block.calls` calls of `hearth.rank()`, on the page and in the worker. */
export async function rankBlockInPage(block: RankBlock): Promise<RankBlockFigures> {
  const state = window as unknown as { benchHearth: Awaited<ReturnType<HearthGlobal['init']>>; benchFreshCalls?: number }
  const hearth = state.benchHearth
  const workerTimes = async (): Promise<number[]> => {
    const channel = new BroadcastChannel('hearth-bench-rank')
    try {
      return await new Promise<number[]>((resolve) => {
        channel.onmessage = (event: MessageEvent<number[]>) => resolve(event.data)
        channel.postMessage('times')
      })
    } finally {
      channel.close()
    }
  }
  await workerTimes() // drops what earlier calls left
  const same = Array.from({ length: block.candidates }, (_, i) => `item-${i}`)
  const reasons: Record<string, number> = {}
  const pageMs: number[] = []
  let minPropensity = Infinity
  for (let call = 0; call < block.calls; call++) {
    let candidates = same
    if (block.fresh) {
      const k = (state.benchFreshCalls = (state.benchFreshCalls ?? 0) + 1)
      candidates = Array.from({ length: block.candidates }, (_, i) => `fresh-${k}-${i}`)
    }
    const started = performance.now()
    const result = await hearth.rank(candidates, { surface: 'bench' })
    pageMs.push(performance.now() - started)
    for (const item of result.items) {
      reasons[item.reason.kind] = (reasons[item.reason.kind] ?? 0) + 1
      minPropensity = Math.min(minPropensity, item.propensity)
    }
  }
  return { pageMs, workerMs: await workerTimes(), reasons, minPropensity }
}

/** The plain-JavaScript baseline, the decision count, and `close()`. */
export async function finishRankPage(config: { readonly calls: number; readonly candidates: number; readonly dim: number }): Promise<RankPageSummary> {
  const hearth = (window as unknown as { benchHearth: Awaited<ReturnType<HearthGlobal['init']>> }).benchHearth
  const baselineMs: number[] = []
  const candidates = Array.from({ length: config.candidates }, (_, i) => `item-${i}`)
  const vectors = Float32Array.from({ length: config.candidates * config.dim }, () => Math.random() - 0.5)
  const user = Float32Array.from({ length: config.dim }, () => Math.random() - 0.5)
  for (let call = 0; call < 20 + config.calls; call++) {
    const started = performance.now()
    const scored = candidates.map((item, i) => {
      let s = 0
      for (let k = 0; k < config.dim; k++) s += (vectors[i * config.dim + k] as number) * (user[k] as number)
      return { item, s }
    })
    scored.sort((a, b) => b.s - a.s)
    if (call >= 20) baselineMs.push(performance.now() - started)
  }
  const decisionsLogged = (await hearth.decisions()).length
  await hearth.close()
  return { baselineMs, decisionsLogged }
}
