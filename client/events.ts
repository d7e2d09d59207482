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

/** Event name → `CustomEvent` detail. */
export interface HearthEventMap {
  model: ModelEventDetail
  round: RoundEventDetail
  error: ErrorEventDetail
}

export type HearthEventName = keyof HearthEventMap
