/**
 * Reasons from the numbers that ranked an item (the kinds are described in protocol/ranking.ts).
 *
 * score(i) = personal(i) + prior(i), personal(i) = ⟨v_user, t(i)⟩, prior(i) = p(i). Which term
 * put an item where it is, relative to the other candidates, is read from its lift over the
 * candidates' mean: personal(i) − mean(personal) against prior(i) − mean(prior). When the personal
 * term lifted it more, the reason names the engaged item whose vector is nearest to t(i) (cosine
 * similarity): the user's own history that makes the personal term high.
 *
 * Reasons come out as columns (`RankColumns`): a table with one row per distinct reason (one
 * `similar` row per engaged item named, built once per ranking) and, per position, a row index
 * and the similarity in thousandths. No per-item object or string is made in the worker.
 */
import type { EventKind } from '../../protocol/events.ts'
import { EXPLORING_TEXT, POPULAR_TEXT } from '../../protocol/ranking.ts'
import type { RankColumns, ReasonTemplate } from '../../protocol/ranking.ts'
import type { Placement } from './exploration.ts'

const VERB: Readonly<Record<EventKind, string>> = {
  view: 'viewed',
  click: 'opened',
  like: 'liked',
  purchase: 'bought',
  dismiss: 'dismissed',
  dislike: 'disliked',
}

const POPULAR: ReasonTemplate = { kind: 'popular', text: POPULAR_TEXT }
const EXPLORING: ReasonTemplate = { kind: 'exploring', text: EXPLORING_TEXT }

/** An item the user engaged with, as reasons name it. */
export interface EngagedItem {
  readonly item: string
  readonly engagement: EventKind
}

/** What the ranker computed for the candidates (length n), and the nearest engaged item of each. */
export interface ReasonInputs {
  readonly personal: Float32Array | null
  readonly prior: Float32Array
  /** Index into `history` of the nearest engaged item, or -1. */
  readonly nearest: Int32Array | null
  readonly similarity: Float32Array | null
  readonly history: readonly EngagedItem[]
}

function mean(values: Float32Array): number {
  let sum = 0
  for (const v of values) sum += v
  return values.length === 0 ? 0 : sum / values.length
}

/** The reason columns of a ranking. */
export type ReasonColumns = Pick<RankColumns, 'reasonTable' | 'reasons' | 'similarity'>

/** The reasons of `placements` (positions in order), from the ranker's outputs. */
export function reasonColumns(inputs: ReasonInputs, placements: readonly Placement[]): ReasonColumns {
  const { personal, prior, nearest, similarity, history } = inputs
  const n = placements.length
  const table: ReasonTemplate[] = []
  const rows = new Uint16Array(n)
  const thousandths = new Int16Array(n)
  let popularRow = -1
  let exploringRow = -1
  // Row of the `similar` reason naming history[h], made the first time it is needed.
  const similarRow = new Int32Array(history.length).fill(-1)
  // Without the personal term (or nearest items) every item not explored is `popular`.
  const explained = personal !== null && nearest !== null && similarity !== null
  const personalMean = personal === null ? 0 : mean(personal)
  const priorMean = mean(prior)
  for (let p = 0; p < n; p++) {
    const { index, explored } = placements[p] as Placement
    if (explored) {
      if (exploringRow < 0) exploringRow = table.push(EXPLORING) - 1
      rows[p] = exploringRow
      continue
    }
    const h = explained ? (nearest[index] as number) : -1
    const engaged = history[h]
    if (!explained || engaged === undefined || (personal[index] as number) - personalMean < (prior[index] as number) - priorMean) {
      if (popularRow < 0) popularRow = table.push(POPULAR) - 1
      rows[p] = popularRow
      continue
    }
    if ((similarRow[h] as number) < 0) {
      similarRow[h] = table.push({ kind: 'similar', item: engaged.item, engagement: engaged.engagement, text: `Because you ${VERB[engaged.engagement]} ${engaged.item}` }) - 1
    }
    rows[p] = similarRow[h] as number
    thousandths[p] = Math.round(Math.max(-1, Math.min(1, similarity[index] as number)) * 1000)
  }
  return { reasonTable: table, reasons: rows, similarity: thousandths }
}
