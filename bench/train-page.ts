/**
 * The in-page half of `bench train`: runs in Chromium (through `page.evaluate`), so it may use
 * nothing from this module's scope. It drives the production worker directly over comlink.
 */
import type { BackendName, HearthWorkerApi } from '../worker/api.ts'
import type { ModelSpec } from '../protocol/model-spec.ts'
import type * as Comlink from 'comlink'

export interface BenchConfig {
  readonly spec: ModelSpec
  readonly events: number
  readonly examples: number
  readonly repeats: number
  readonly backends: readonly BackendName[]
}

export interface BackendFigures {
  readonly backend: string
  readonly writeEventsPerSecond: number
  readonly readEventsPerSecond: number
  readonly localExamplesPerSecond: number
  readonly roundExamplesPerSecond: number
}

/** The bench page: an empty document; the work arrives through `page.evaluate`. */
export const BENCH_PAGE = '<!doctype html><meta charset="utf-8"><title>Hearth training benchmark</title>'

/** Measures every backend of `config` in turn, each in a fresh worker and database. */
export async function trainBenchInPage(config: BenchConfig): Promise<BackendFigures[]> {
  const comlinkUrl: string = '/vendor/comlink.mjs'
  const { wrap } = (await import(comlinkUrl)) as typeof Comlink
  const median = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b)
    return sorted[Math.floor(sorted.length / 2)] ?? NaN
  }
  const kinds = ['view', 'click', 'like', 'purchase', 'dismiss'] as const
  const events = Array.from({ length: config.events }, (_, i) => ({
    item: `item-${(i * 7919) % 3000}`,
    kind: kinds[i % kinds.length] as (typeof kinds)[number],
    at: 1_700_000_000_000 + i,
  }))
  const plan = { epochs: 1, batchSize: 64, learningRate: 0.05, maxExamples: config.examples }
  const out: BackendFigures[] = []
  for (const backend of config.backends) {
    const worker = new Worker('/hearth/hearth.worker.js', { type: 'module' })
    const api = wrap<HearthWorkerApi>(worker)
    const dbName = `bench-${backend}-${Date.now()}`
    const info = await api.init({ dbName, spec: config.spec, backends: [backend], wasmBaseUrl: `${location.origin}/hearth/wasm/` })
    if (info.backend !== backend) throw new Error(`asked for ${backend}, the worker started ${info.backend}`)
    const writes: number[] = []
    const reads: number[] = []
    const local: number[] = []
    const rounds: number[] = []
    for (let r = 0; r < config.repeats; r++) {
      let t = performance.now()
      await api.record(events)
      writes.push(config.events / ((performance.now() - t) / 1000))
      t = performance.now()
      const exported = await api.exportData()
      reads.push(exported.events.length / ((performance.now() - t) / 1000))
      const trained = await api.trainLocal(plan)
      local.push(trained.examples / (trained.durationMs / 1000))
    }
    const global = new Float32Array(config.spec.tensors.filter((t) => t.federated).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0))
    for (let r = 0; r < config.repeats; r++) {
      const result = await api.trainRound({ roundId: r + 1, baseVersion: 1, globalWeights: global.slice(), plan })
      rounds.push(result.examples / (result.durationMs / 1000))
    }
    await api.close()
    worker.terminate()
    await new Promise((resolve) => {
      const request = indexedDB.deleteDatabase(dbName)
      request.onsuccess = request.onerror = request.onblocked = resolve
    })
    out.push({
      backend,
      writeEventsPerSecond: median(writes),
      readEventsPerSecond: median(reads),
      localExamplesPerSecond: median(local),
      roundExamplesPerSecond: median(rounds),
    })
  }
  return out
}
