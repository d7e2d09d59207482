/**
 * The quality benchmark's results: one row per method, the issue's targets checked against
 * them, a Markdown table for people and one JSON object for machines.
 */
import type { PrivacyOutcome } from './quality-federated.ts'
import type { RankingQuality } from './quality-metrics.ts'

export const METHODS = ['itempop', 'central', 'federated', 'secagg', 'secagg-dp'] as const
export type Method = (typeof METHODS)[number]

export const METHOD_NAMES: Readonly<Record<Method, string>> = {
  itempop: 'ItemPop',
  central: 'central (same model)',
  federated: 'federated',
  secagg: 'federated + SecAgg',
  'secagg-dp': 'federated + SecAgg + DP',
}

export interface MethodResult {
  readonly method: Method
  readonly quality: RankingQuality
  readonly seconds: number
  readonly epochs?: number
  readonly rounds?: number
  readonly meanCohort?: number
  /** The devices' round optimizer, e.g. "SGD lr 0.5". */
  readonly device?: string
  /** Median L2 norm of the devices' deltas before clipping. */
  readonly medianUpdateNorm?: number
  readonly privacy?: PrivacyOutcome
  /**
   * Central only: the trained item side with every user's vector reconstructed on the device
   * from its own data, as the federated arms are evaluated, instead of the central user table.
   */
  readonly reconstructed?: RankingQuality
}

/** One target of the issue and whether the run met it. */
export interface TargetCheck {
  readonly target: string
  readonly value: number
  readonly met: boolean
}

export interface QualityReport {
  readonly dataset: { readonly name: string; readonly users: number; readonly items: number; readonly interactions: number; readonly testUsers: number }
  readonly protocol: string
  readonly machine: { readonly node: string; readonly cpus: number; readonly backend: string }
  readonly date: string
  readonly settings: unknown
  readonly results: readonly MethodResult[]
  readonly targets: readonly TargetCheck[]
  readonly seconds: number
}

/** The issue's targets (issue 4, item 6), for the methods that ran. */
export function checkTargets(results: readonly MethodResult[]): TargetCheck[] {
  const hr = (m: Method): number | undefined => results.find((r) => r.method === m)?.quality.hr
  const central = hr('central')
  const pop = hr('itempop')
  const out: TargetCheck[] = []
  if (central !== undefined) out.push({ target: 'central HR@10 >= 0.65', value: central, met: central >= 0.65 })
  const federated = hr('federated')
  if (central !== undefined && federated !== undefined) {
    const ratio = federated / central
    out.push({ target: 'federated HR@10 within 10% of central', value: ratio, met: ratio >= 0.9 })
  }
  const private_ = hr('secagg-dp')
  if (central !== undefined && private_ !== undefined) {
    const ratio = private_ / central
    out.push({ target: 'SecAgg + DP HR@10 within 15% of central', value: ratio, met: ratio >= 0.85 })
  }
  if (pop !== undefined && private_ !== undefined) {
    const ratio = private_ / pop
    out.push({ target: 'SecAgg + DP HR@10 >= 1.15x ItemPop', value: ratio, met: ratio >= 1.15 })
  }
  return out
}

function training(r: MethodResult): string {
  if (r.epochs !== undefined) return `${r.epochs} epochs`
  if (r.rounds !== undefined) return `${r.rounds} rounds, cohort ${r.meanCohort?.toFixed(0) ?? '?'}${r.device === undefined ? '' : `, devices ${r.device}`}`
  return '—'
}

function privacy(r: MethodResult): string {
  const p = r.privacy
  if (p === undefined) return '—'
  const norm = r.medianUpdateNorm === undefined ? '' : ` (median ‖Δ‖ ${r.medianUpdateNorm.toPrecision(2)})`
  const clip = `C=${p.clipNorm}, ${(100 * p.clippedShare).toFixed(0)}% clipped${norm}`
  if (p.epsilon === undefined) return clip
  return `ε=${p.epsilon.toFixed(2)} δ=${p.delta ?? '?'} z=${p.noiseMultiplier.toFixed(3)}, ${clip}`
}

/** The results as a Markdown table, then the targets. */
export function formatReport(report: QualityReport): string {
  const central = report.results.find((r) => r.method === 'central')?.quality.hr
  const pop = report.results.find((r) => r.method === 'itempop')?.quality.hr
  const ratio = (hr: number, base: number | undefined): string => (base === undefined ? '—' : `${(hr / base).toFixed(3)}x`)
  const lines = [
    `${report.dataset.name}: ${report.dataset.users} users, ${report.dataset.items} items, ${report.dataset.interactions} training interactions, ${report.dataset.testUsers} test users`,
    `${report.protocol}; ${report.machine.cpus} cores, Node ${report.machine.node}, tfjs ${report.machine.backend}; ${report.seconds.toFixed(0)} s in all`,
    '',
    '| method | HR@10 | NDCG@10 | / central | / ItemPop | training | privacy | time |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...report.results.map(
      (r) =>
        `| ${METHOD_NAMES[r.method]} | ${r.quality.hr.toFixed(4)} | ${r.quality.ndcg.toFixed(4)} | ${ratio(r.quality.hr, central)} | ${ratio(r.quality.hr, pop)} | ${training(r)} | ${privacy(r)} | ${r.seconds.toFixed(0)} s |`,
    ),
    ...report.results.flatMap((r) =>
      r.reconstructed === undefined
        ? []
        : [
            '',
            `${METHOD_NAMES[r.method]} with each user's vector reconstructed on the device, as the federated arms are evaluated: HR@10 ${r.reconstructed.hr.toFixed(4)}, NDCG@10 ${r.reconstructed.ndcg.toFixed(4)} (${ratio(r.reconstructed.hr, central)} central)`,
          ],
    ),
    '',
    ...report.targets.map((t) => `${t.met ? 'met    ' : 'not met'}  ${t.target}: ${t.value.toFixed(3)}`),
  ]
  return lines.join('\n')
}
