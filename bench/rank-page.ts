/**
 * The in-page half of `bench:rank`. `rankBenchInPage` runs in Chromium through `page.evaluate`,
 * so it may use nothing from this module's scope; `TIMING_WORKER` is the source of the worker
 * script the page starts instead of `hearth.worker.js`.
 */
import type { HearthGlobal } from '../client/script-tag.ts'

export interface RankBenchConfig {
  readonly aggregatorUrl: string
  readonly appKey: string
  /** Where the timing worker and the `wasm/` folder are served (ends with `/`). */
  readonly assetsBaseUrl: string
  readonly candidates: number
  readonly calls: number
  readonly warmup: number
  readonly historyItems: number
  /** Width of the vectors of the plain-JavaScript baseline: the model's dim. */
  readonly dim: number
}

export interface RankBenchFigures {
  readonly backend: string
  readonly modelVersion: number | null
  /** `await hearth.rank(candidates)` on the page, through comlink, in ms. */
  readonly pageMs: readonly number[]
  /** From the rank request reaching the worker to its reply being posted, in ms. */
  readonly workerMs: readonly number[]
  /** Plain JavaScript: `dim`-wide dot products of every candidate, then a sort, in ms. */
  readonly baselineMs: readonly number[]
  readonly reasons: Readonly<Record<string, number>>
  readonly decisionsLogged: number
}

/** The channel the timing worker answers on (BroadcastChannel: the page never sees the Worker object). */
export const TIMING_CHANNEL = 'hearth-bench-rank'

/**
 * The timing worker: `TIMING_HOOKS` notes when each comlink request for `rank` arrives and when
 * its reply is posted, then the production worker loads unchanged. Comlink (`expose`) listens
 * with `addEventListener('message')` and answers with `postMessage({ ...value, id })`, so
 * wrapping those two times exactly the worker's side of a call, after the request was
 * deserialized. Static imports, not `await import()`: a module worker starts delivering
 * messages once its script has run, and with a top-level await the page's first request would
 * arrive before comlink listens, and be lost.
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
    if (data && data.type === 'APPLY' && Array.isArray(data.path) && data.path[0] === 'rank') arrived.set(data.id, performance.now())
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

/** The bench page: the script-tag build, started by `rankBenchInPage`. */
export const RANK_PAGE = '<!doctype html><meta charset="utf-8"><title>Hearth rank benchmark</title><script src="/hearth/hearth.iife.js"></script>'

/** Starts Hearth, gives it a history, then times `rank()` of the same candidates `calls` times. */
export async function rankBenchInPage(config: RankBenchConfig): Promise<RankBenchFigures> {
  const Hearth = (window as unknown as { Hearth: HearthGlobal }).Hearth
  const hearth = await Hearth.init({ aggregatorUrl: config.aggregatorUrl, appKey: config.appKey, federated: false, assetsBaseUrl: config.assetsBaseUrl, training: false, serviceWorker: false })
  console.log('[bench] started, backend', hearth.backend, 'model version', hearth.modelVersion)
  const kinds = ['view', 'click', 'like', 'purchase'] as const
  for (let i = 0; i < config.historyItems * 3; i++) hearth.record({ item: `item-${(i * 7) % config.historyItems}`, kind: kinds[i % kinds.length] as (typeof kinds)[number] })
  await hearth.flush()
  // Fits the user vector, so that the personal term and "similar" reasons are computed.
  await hearth.train({ epochs: 2 })
  console.log('[bench] trained on', config.historyItems, 'items')
  const candidates = Array.from({ length: config.candidates }, (_, i) => `item-${i}`)
  const reasons: Record<string, number> = {}
  const pageMs: number[] = []
  for (let call = 0; call < config.warmup + config.calls; call++) {
    const started = performance.now()
    const result = await hearth.rank(candidates, { surface: 'bench' })
    const elapsed = performance.now() - started
    if (call < config.warmup) continue
    pageMs.push(elapsed)
    for (const item of result.items) reasons[item.reason.kind] = (reasons[item.reason.kind] ?? 0) + 1
  }
  console.log('[bench] ranked', config.calls, 'times')
  const channel = new BroadcastChannel('hearth-bench-rank')
  const allWorkerMs = await new Promise<number[]>((resolve) => {
    channel.onmessage = (event: MessageEvent<number[]>) => resolve(event.data)
    channel.postMessage('times')
  })
  channel.close()
  const baselineMs: number[] = []
  const vectors = Float32Array.from({ length: config.candidates * config.dim }, () => Math.random() - 0.5)
  const user = Float32Array.from({ length: config.dim }, () => Math.random() - 0.5)
  for (let call = 0; call < config.warmup + config.calls; call++) {
    const started = performance.now()
    const scored = candidates.map((item, i) => {
      let s = 0
      for (let k = 0; k < config.dim; k++) s += (vectors[i * config.dim + k] as number) * (user[k] as number)
      return { item, s }
    })
    scored.sort((a, b) => b.s - a.s)
    if (call >= config.warmup) baselineMs.push(performance.now() - started)
  }
  const decisionsLogged = (await hearth.decisions()).length
  const figures = { backend: hearth.backend, modelVersion: hearth.modelVersion, pageMs, workerMs: allWorkerMs.slice(config.warmup), baselineMs, reasons, decisionsLogged }
  await hearth.close()
  return figures
}
