/**
 * The load benchmark's figures for one configuration, from three sources on one clock (same
 * host): the aggregator's round records (`/admin/rounds`: when each round opened, selected its
 * cohort and ended), the devices' own timestamps (`load-fleet.ts`), and the aggregator process's
 * CPU and memory (`/proc`).
 *
 * Stages, each as p50 / p99:
 * - plan: cohort selected (record `selectedAt`) → the device has its `round-plan`, per device.
 *   Includes the write-ahead of the cohort to the store and the fan-out of the plans.
 * - upload → ack: a device sent its Update frame → its `upload-accepted` arrived, per device.
 * - collection: cohort selected → the last `upload-accepted`, per round (uploads close then).
 * - result: the last `upload-accepted` → the device has its `round-result`, per device:
 *   aggregation, the publishing transaction and the fan-out of the results.
 * Per-round figures come from a handful of rounds, so their p99 is close to their maximum.
 */
import type { RoundRecord } from '../aggregator/store/store.ts'
import type { FleetReport } from './load-fleet.ts'
import type { ProcessSample } from './load-aggregator.ts'
import { quantile } from './stats.ts'

export interface Percentiles {
  readonly p50: number
  readonly p99: number
  readonly samples: number
}

export interface LoadFigures {
  readonly aggregation: 'plain' | 'secagg'
  readonly clients: number
  /** Devices whose check-in was welcomed. */
  readonly checkedIn: number
  /** Device sockets still open at the end. */
  readonly held: number
  /** Sessions the aggregator counted as connected at the end (`hearth_connected_clients`). */
  readonly heldByAggregator: number
  readonly failures: Record<string, number>
  readonly cohort: number
  /** Seconds to open every device's socket (WebSocket handshakes, `connectConcurrency` at a time per process). */
  readonly connectSeconds: number
  /** Seconds from the first check-in sent to the last welcome (all sent at once). */
  readonly checkInSeconds: number
  /** Rounds opened after the last check-in and ended within the run. */
  readonly published: number
  readonly aborted: number
  readonly abortReasons: Record<string, number>
  /** Rounds that opened while devices were still checking in (not in the figures). */
  readonly warmupRounds: number
  readonly stagesMs: {
    readonly plan: Percentiles
    readonly uploadAck: Percentiles
    readonly collection: Percentiles
    readonly result: Percentiles
  }
  /** Device-side errors during measured rounds, by code. */
  readonly roundErrors: Record<string, number>
  readonly roundsPerMinute: number
  /** The aggregator's CPU over the measured rounds, % of one core. */
  readonly aggregatorCpuPercent: number
  /** The aggregator's CPU time per measured round, seconds: what a round costs, however starved. */
  readonly aggregatorCpuSecondsPerRound: number
  /** Wall time the aggregator's event loop waited for a CPU during the measured rounds, %. */
  readonly aggregatorRunQueuePercent: number
  /** The aggregator's CPU while the devices connected (handshakes only), % of one core. */
  readonly connectCpuPercent: number
  readonly aggregatorRssIdleMiB: number
  /** Right after every device checked in. */
  readonly aggregatorRssHeldMiB: number
  readonly aggregatorRssPeakMiB: number
  /** (held RSS − idle RSS) / devices checked in, KiB. */
  readonly rssPerClientKiB: number
  /** The device processes' CPU over the whole run, % of one core. */
  readonly devicesCpuPercent: number
  readonly measuredSeconds: number
  /** 1-minute load average at the start and the end of the run (`os.loadavg()`). */
  readonly loadAverage: readonly [number, number]
}

export function percentiles(values: readonly number[]): Percentiles {
  return { p50: quantile(values, 0.5), p99: quantile(values, 0.99), samples: values.length }
}

export interface RunObservations {
  readonly aggregation: 'plain' | 'secagg'
  readonly clients: number
  readonly cohort: number
  readonly connectStartedAt: number
  readonly fleets: readonly FleetReport[]
  readonly records: readonly RoundRecord[]
  readonly heldByAggregator: number
  /** Before any device, once every socket is open, right after every check-in, at the end of the rounds, and every tick. */
  readonly idle: ProcessSample
  readonly connected: ProcessSample
  readonly held: ProcessSample
  readonly end: ProcessSample
  readonly samples: readonly ProcessSample[]
  readonly loadAverage: readonly [number, number]
}

const MIB = 1024 * 1024

export function summarize(o: RunObservations): LoadFigures {
  const sum = (f: (r: FleetReport) => number): number => o.fleets.reduce((a, r) => a + f(r), 0)
  const lastCheckin = Math.max(...o.fleets.map((r) => r.lastCheckinSentAt))
  const ended = o.records.filter((r) => r.outcome !== null)
  const measured = ended.filter((r) => r.createdAt >= lastCheckin)
  const abortReasons: Record<string, number> = {}
  for (const r of measured) if (r.outcome === 'aborted') abortReasons[r.reason ?? 'unknown'] = (abortReasons[r.reason ?? 'unknown'] ?? 0) + 1

  const plan: number[] = []
  const uploadAck: number[] = []
  const collection: number[] = []
  const result: number[] = []
  const roundErrors: Record<string, number> = {}
  for (const record of measured) {
    const views = o.fleets.flatMap((f) => f.rounds.filter((r) => r.roundId === record.id))
    const lastAck = Math.max(0, ...views.map((v) => v.lastAckAt))
    for (const v of views) {
      if (record.selectedAt !== null) for (const at of v.plans) plan.push(at - record.selectedAt)
      uploadAck.push(...v.acks)
      if (lastAck > 0) for (const at of v.results) result.push(at - lastAck)
      for (const [code, n] of Object.entries(v.errors)) roundErrors[code] = (roundErrors[code] ?? 0) + n
    }
    if (record.selectedAt !== null && lastAck > 0) collection.push(lastAck - record.selectedAt)
  }

  const first = measured.at(-1) // records are newest first
  const windowStart = first === undefined ? o.held.at : Math.min(first.createdAt, o.end.at)
  const inWindow = o.samples.filter((s) => s.at >= windowStart)
  const from = inWindow[0] ?? o.held
  const measuredSeconds = (o.end.at - from.at) / 1000
  const cpuPercent = (a: ProcessSample, b: ProcessSample): number => (b.at > a.at ? (100 * (b.cpuSeconds - a.cpuSeconds)) / ((b.at - a.at) / 1000) : NaN)
  const checkedIn = sum((r) => r.checkedIn)
  const failures: Record<string, number> = {}
  for (const f of o.fleets) for (const [why, n] of Object.entries(f.failures)) failures[why] = (failures[why] ?? 0) + n
  const runSeconds = (o.end.at - o.connectStartedAt) / 1000

  return {
    aggregation: o.aggregation,
    clients: o.clients,
    checkedIn,
    held: sum((r) => r.open),
    heldByAggregator: o.heldByAggregator,
    failures,
    cohort: o.cohort,
    connectSeconds: (o.connected.at - o.connectStartedAt) / 1000,
    checkInSeconds: (o.held.at - o.connected.at) / 1000,
    published: measured.filter((r) => r.outcome === 'published').length,
    aborted: measured.filter((r) => r.outcome === 'aborted').length,
    abortReasons,
    warmupRounds: ended.length - measured.length,
    stagesMs: { plan: percentiles(plan), uploadAck: percentiles(uploadAck), collection: percentiles(collection), result: percentiles(result) },
    roundErrors,
    roundsPerMinute: measuredSeconds > 0 ? (60 * measured.length) / measuredSeconds : NaN,
    aggregatorCpuPercent: cpuPercent(from, o.end),
    aggregatorCpuSecondsPerRound: measured.length > 0 ? (o.end.cpuSeconds - from.cpuSeconds) / measured.length : NaN,
    aggregatorRunQueuePercent: o.end.at > from.at ? (100 * (o.end.runQueueSeconds - from.runQueueSeconds)) / ((o.end.at - from.at) / 1000) : NaN,
    connectCpuPercent: cpuPercent(o.idle, o.connected),
    aggregatorRssIdleMiB: o.idle.rssBytes / MIB,
    aggregatorRssHeldMiB: o.held.rssBytes / MIB,
    aggregatorRssPeakMiB: Math.max(o.idle.rssBytes, o.held.rssBytes, o.end.rssBytes, ...o.samples.map((s) => s.rssBytes)) / MIB,
    rssPerClientKiB: checkedIn > 0 ? (o.held.rssBytes - o.idle.rssBytes) / 1024 / checkedIn : NaN,
    devicesCpuPercent: runSeconds > 0 ? (100 * sum((r) => r.cpuSeconds)) / runSeconds : NaN,
    measuredSeconds,
    loadAverage: o.loadAverage,
  }
}

function ms(value: number): string {
  if (!Number.isFinite(value)) return '—'
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : value >= 100 ? `${value.toFixed(0)} ms` : `${value.toFixed(1)} ms`
}

function pair(p: Percentiles): string {
  return `${ms(p.p50)} / ${ms(p.p99)}`
}

/** The figures as a Markdown table, one row per configuration (as the other benchmarks print). */
export function table(rows: readonly LoadFigures[]): string {
  const header = [
    'aggregation', 'clients', 'held', 'cohort', 'connect / check-in', 'rounds published / aborted', 'plan p50 / p99', 'upload → ack p50 / p99',
    'collection p50 / p99', 'result p50 / p99', 'aggregator CPU (rounds)', 'CPU per round', 'waiting for a CPU', 'aggregator CPU (connect)', 'aggregator RSS idle / held / peak', 'RSS per client', 'load avg',
  ]
  const lines = rows.map((f) => [
    f.aggregation,
    f.clients.toLocaleString('en-US'),
    f.heldByAggregator === f.held ? f.held.toLocaleString('en-US') : `${f.held.toLocaleString('en-US')} (aggregator: ${f.heldByAggregator.toLocaleString('en-US')})`,
    f.cohort.toLocaleString('en-US'),
    `${f.connectSeconds.toFixed(1)} s / ${f.checkInSeconds.toFixed(1)} s`,
    `${f.published} / ${f.aborted}`,
    pair(f.stagesMs.plan),
    pair(f.stagesMs.uploadAck),
    pair(f.stagesMs.collection),
    pair(f.stagesMs.result),
    `${f.aggregatorCpuPercent.toFixed(0)}%`,
    `${f.aggregatorCpuSecondsPerRound.toFixed(2)} s`,
    `${f.aggregatorRunQueuePercent.toFixed(0)}%`,
    `${f.connectCpuPercent.toFixed(0)}%`,
    `${f.aggregatorRssIdleMiB.toFixed(0)} / ${f.aggregatorRssHeldMiB.toFixed(0)} / ${f.aggregatorRssPeakMiB.toFixed(0)} MiB`,
    `${f.rssPerClientKiB.toFixed(1)} KiB`,
    `${f.loadAverage[0].toFixed(1)} → ${f.loadAverage[1].toFixed(1)}`,
  ])
  const all = [header, header.map(() => '---'), ...lines]
  const widths = header.map((_, c) => Math.max(...all.map((row) => (row[c] as string).length)))
  return all.map((row) => `| ${row.map((cell, c) => (cell === '---' ? '-'.repeat(widths[c] as number) : cell.padEnd(widths[c] as number))).join(' | ')} |`).join('\n')
}
