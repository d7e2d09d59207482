/**
 * Events a `Hearth` instance dispatches, so apps can react without polling.
 */
import type { HearthError } from '../protocol/errors.ts'

/** A new global model version was installed on the device. */
export interface ModelEventDetail {
  readonly version: number
}

/** Where this device stands in a federated round. */
export interface RoundEventDetail {
  readonly roundId: number
  readonly status: 'training' | 'uploaded' | 'accepted' | 'skipped' | 'published' | 'aborted'
  /** Why a round was skipped or aborted. */
  readonly reason?: string
  /** The published version, with status `published`. */
  readonly version?: number
}

export interface ErrorEventDetail {
  readonly error: HearthError
}

/** Personalization was paused (`pause()`) or resumed (`resume()`, or `deleteData()` resetting it). */
export interface PersonalizationEventDetail {
  readonly paused: boolean
}

/** Federated learning was turned on or off (`setFederated()`, or `deleteData()` resetting it). */
export interface FederatedEventDetail {
  /** Whether the device now joins rounds (`hearth.federated`). */
  readonly federated: boolean
}

/** A consent category was granted or revoked. */
export interface ConsentEventDetail {
  readonly category: string
  readonly granted: boolean
}

/** Everything stored on the device for the user was deleted (`deleteData()`). */
export interface DeleteEventDetail {
  readonly at: number
}

/** The scheduler trained the model in the worker while the page was idle or hidden. */
export interface TrainingEventDetail {
  readonly examples: number
  readonly steps: number
  readonly loss: number
  readonly durationMs: number
  /** `done`, or the budget (`time`, `memory`) that ended the run early. */
  readonly stoppedBy: 'done' | 'time' | 'memory'
  /** What started it. */
  readonly trigger: 'idle' | 'hidden'
}

/** Event name → `CustomEvent` detail. */
export interface HearthEventMap {
  model: ModelEventDetail
  round: RoundEventDetail
  error: ErrorEventDetail
  personalization: PersonalizationEventDetail
  consent: ConsentEventDetail
  federated: FederatedEventDetail
  delete: DeleteEventDetail
  training: TrainingEventDetail
}

export type HearthEventName = keyof HearthEventMap
