/**
 * Reasons from the numbers that ranked an item (the kinds are described in protocol/ranking.ts).
 *
 * score(i) = personal(i) + prior(i), personal(i) = ⟨v_user, t(i)⟩, prior(i) = p(i). Which term
 * put an item where it is, relative to the other candidates, is read from its lift over the
 * candidates' mean: personal(i) − mean(personal) against prior(i) − mean(prior). When the personal
 * term lifted it more, the reason names the engaged item whose vector is nearest to t(i) (cosine
 * similarity): the user's own history that makes the personal term high.
 */
import type { EventKind } from '../../protocol/events.ts'
import { EXPLORING_TEXT, POPULAR_TEXT } from '../../protocol/ranking.ts'
import type { Reason } from '../../protocol/ranking.ts'

const VERB: Readonly<Record<EventKind, string>> = {
  view: 'viewed',
  click: 'opened',
  like: 'liked',
  purchase: 'bought',
  dismiss: 'dismissed',
  dislike: 'disliked',
}

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

/** Derives reasons for candidates; call with the ranker's outputs once per ranking. */
export class Reasons {
  readonly #inputs: ReasonInputs
  readonly #personalMean: number
  readonly #priorMean: number

  constructor(inputs: ReasonInputs) {
    this.#inputs = inputs
    this.#personalMean = inputs.personal === null ? 0 : mean(inputs.personal)
    this.#priorMean = mean(inputs.prior)
  }

  /** The reason of candidate `index`, placed by its score (`explored` false) or by exploration. */
  of(index: number, explored: boolean): Reason {
    if (explored) return { kind: 'exploring', text: EXPLORING_TEXT }
    const { personal, prior, nearest, similarity, history } = this.#inputs
    if (personal === null || nearest === null || similarity === null) return { kind: 'popular', text: POPULAR_TEXT }
    const personalLift = (personal[index] as number) - this.#personalMean
    const priorLift = (prior[index] as number) - this.#priorMean
    const engaged = history[nearest[index] as number]
    if (engaged === undefined || personalLift < priorLift) return { kind: 'popular', text: POPULAR_TEXT }
    const cosine = Math.max(-1, Math.min(1, similarity[index] as number))
    return {
      kind: 'similar',
      item: engaged.item,
      engagement: engaged.engagement,
      similarity: Math.round(cosine * 1000) / 1000,
      text: `Because you ${VERB[engaged.engagement]} ${engaged.item}`,
    }
  }
}
