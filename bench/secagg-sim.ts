/**
 * One simulated secure-aggregation round in this process: real protocol, real cryptography
 * (WebCrypto, @noble), real JSON and binary frames. Shared by `hearth simulate secagg` and
 * `bench/secagg.ts`.
 *
 * The seed drives only the simulation's choices — the float updates, the rounding coins of the
 * quantizer and which clients drop out — through a small seeded PRNG. Keys, self-mask seeds,
 * Shamir coefficients, IVs and the graph always come from the platform CSPRNG.
 */
import { combineGroupSums, configureGroup, quantize, runLocalRound, SecAggStage, splitIntoGroups } from '../protocol/secagg/index.ts'
import type { DropoutPoint, GroupOutcome, PrgAlgorithm, SecAggMode } from '../protocol/secagg/index.ts'
import { quantile } from './stats.ts'
import { seededUniform } from '../worker/model/random.ts'

export interface SimulationOptions {
  readonly clients: number
  readonly dim: number
  /** Probability that a client drops out. */
  readonly dropout: number
  readonly seed: number
  readonly mode: SecAggMode
  /** Stage at which dropouts happen, or 'random' (default: after ShareKeys, the costly case). */
  readonly dropoutStage: SecAggStage | 'random'
  /** δ used to derive k and t (default: `dropout`). */
  readonly expectedDropout?: number
  /** γ used to derive k and t (default 0.05). */
  readonly corruptFraction?: number
  /** Largest group (default: all clients in one group). */
  readonly groupSize?: number
  readonly modulusBits?: number
  readonly clipNorm?: number
  readonly prg?: PrgAlgorithm
  readonly consistencyCheck?: boolean
  /** Clients computing at once (default 1, so each client's time is its own). */
  readonly concurrentClients?: number
}

export interface GroupSummary {
  readonly groupId: number
  readonly clients: number
  readonly survivors: number
  readonly contributed: boolean
  readonly degree: number
  readonly threshold: number
  readonly reason?: string
}

export interface SimulationReport {
  readonly mode: SecAggMode
  readonly clients: number
  readonly dim: number
  readonly dropout: number
  readonly seed: number
  readonly completed: boolean
  /** The unmasked sum equals the plain sum of the same quantized vectors (integers). */
  readonly exact: boolean
  readonly survivors: number
  /** Threshold t (of the first group when there are several). */
  readonly threshold: number
  /** Graph degree k (n − 1 for the complete graph). */
  readonly degree: number
  readonly modulusBits: number
  readonly groups: readonly GroupSummary[]
  readonly clientMsMedian: number
  readonly clientMsP95: number
  /** Server time over all stages and groups. */
  readonly serverMs: number
  /** Server time closing Unmasking (removing the masks), all groups. */
  readonly unmaskMs: number
  /** Time to add the same survivors' vectors in the clear. */
  readonly plainSumMs: number
  /** Median bytes a client sent (JSON text plus the binary masked frame). */
  readonly bytesPerClient: number
  /** Bytes of the raw uint32 vector, 4m. */
  readonly rawVectorBytes: number
  readonly uploadRatio: number
  readonly error?: string
}

function gaussian(random: () => number): number {
  // Box–Muller: simulated model deltas only.
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
}

const STAGES: readonly SecAggStage[] = [SecAggStage.AdvertiseKeys, SecAggStage.ShareKeys, SecAggStage.MaskedInputCollection, SecAggStage.Unmasking]

/** Runs one round (one or more groups) and reports timings, sizes and exactness. */
export async function simulateSecAgg(options: SimulationOptions): Promise<SimulationReport> {
  const random = seededUniform(options.seed)
  const n = options.clients
  const m = options.dim
  const modulusBits = options.modulusBits ?? 32
  const clipNorm = options.clipNorm ?? 1
  const members = splitIntoGroups(
    Array.from({ length: n }, (_, i) => i),
    options.groupSize ?? n,
    (bound) => Math.floor(random() * bound),
  )
  const outcomes: GroupOutcome[] = []
  const summaries: GroupSummary[] = []
  const clientMs: number[] = []
  const upload: number[] = []
  const plainSum = new Float64Array(m)
  let serverMs = 0
  let unmaskMs = 0
  let plainSumMs = 0
  let firstThreshold = 0
  let firstDegree = 0

  for (const [groupId, group] of members.entries()) {
    const config = configureGroup({
      roundId: options.seed >>> 0,
      groupId,
      mode: options.mode,
      groupSize: group.length,
      vectorLength: m,
      modulusBits,
      expectedDropout: options.expectedDropout ?? options.dropout,
      corruptFraction: options.corruptFraction ?? 0.05,
      ...(options.prg === undefined ? {} : { prg: options.prg }),
      ...(options.consistencyCheck === undefined ? {} : { consistencyCheck: options.consistencyCheck }),
    })
    if (groupId === 0) {
      firstThreshold = config.parameters.threshold
      firstDegree = config.parameters.degree
    }
    // Simulated float deltas, clipped and quantized exactly as a client would.
    const quantization = { clipNorm, modulusBits, maxSummands: group.length }
    const inputs = group.map(() => {
      const x = new Float64Array(m)
      for (let i = 0; i < m; i++) x[i] = (gaussian(random) * clipNorm) / Math.sqrt(m)
      return quantize(x, quantization, random)
    })
    const stages = options.consistencyCheck === true ? [...STAGES.slice(0, 3), SecAggStage.ConsistencyCheck, SecAggStage.Unmasking] : STAGES
    const dropouts: DropoutPoint[] = group.map(() => {
      if (random() >= options.dropout) return undefined
      return options.dropoutStage === 'random' ? stages[Math.floor(random() * stages.length)] : options.dropoutStage
    })
    const report = await runLocalRound({
      config,
      inputs,
      dropouts,
      clock: () => performance.now(),
      concurrentClients: options.concurrentClients ?? 1,
    })
    serverMs += report.serverMs
    unmaskMs += report.unmaskMs
    for (const [i, ms] of report.clientMs.entries()) {
      if (dropouts[i] === undefined) {
        clientMs.push(ms)
        upload.push(report.uploadBytes[i] as number)
      }
    }
    const survivors = report.result?.survivors ?? []
    if (report.result !== undefined) {
      // The baseline: the same survivors' vectors summed in the clear (median of 5 runs, so a
      // stray GC pause does not decide the ratio).
      const times: number[] = []
      let sum = new Uint32Array(m)
      for (let run = 0; run < 5; run++) {
        const start = performance.now()
        sum = new Uint32Array(m)
        for (const u of survivors) {
          const x = inputs[u - 1] as Uint32Array
          for (let i = 0; i < m; i++) sum[i] = (sum[i] as number) + (x[i] as number)
        }
        times.push(performance.now() - start)
      }
      plainSumMs += quantile(times, 0.5)
      for (let i = 0; i < m; i++) plainSum[i] = (plainSum[i] as number) + (sum[i] as number)
    }
    outcomes.push({
      groupId,
      clients: group.length,
      ...(report.result === undefined ? {} : { sum: report.result.sum, survivors: survivors.length }),
      ...(report.error === undefined ? {} : { error: report.error }),
    })
    summaries.push({
      groupId,
      clients: group.length,
      survivors: survivors.length,
      contributed: report.completed,
      degree: config.parameters.degree,
      threshold: config.parameters.threshold,
      ...(report.error === undefined ? {} : { reason: `${report.error.code}: ${report.error.message}` }),
    })
  }
  const combined = combineGroupSums(outcomes, m)
  const exact = combined.contributors > 0 && combined.sum.every((v, i) => v === plainSum[i])
  const bytesPerClient = quantile(upload, 0.5)
  const failed = summaries.find((s) => !s.contributed)
  return {
    mode: options.mode,
    clients: n,
    dim: m,
    dropout: options.dropout,
    seed: options.seed,
    completed: failed === undefined,
    exact,
    survivors: combined.contributors,
    threshold: firstThreshold,
    degree: firstDegree,
    modulusBits,
    groups: summaries,
    clientMsMedian: quantile(clientMs, 0.5),
    clientMsP95: quantile(clientMs, 0.95),
    serverMs,
    unmaskMs,
    plainSumMs,
    bytesPerClient,
    rawVectorBytes: 4 * m,
    uploadRatio: bytesPerClient / (4 * m),
    ...(failed?.reason === undefined ? {} : { error: failed.reason }),
  }
}
