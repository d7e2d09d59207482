/**
 * Process-wide counters of what the aggregator did and refused, kept apart from any exporter so
 * that a metrics plugin (Prometheus) can read them without the round engine knowing about it.
 */
import type { ErrorCode } from '../protocol/errors.ts'

/** A point-in-time copy of {@link AggregatorCounters}. */
export interface CountersSnapshot {
  /** Rejected client messages and refused sessions, per catalogue code. */
  readonly rejections: Readonly<Partial<Record<ErrorCode, number>>>
  readonly sessionsCheckedIn: number
  readonly roundsStarted: number
  readonly roundsPublished: number
  readonly roundsAborted: number
  readonly uploadsAccepted: number
  /** Selected clients that left before uploading. */
  readonly participantsDropped: number
}

type Counter = Exclude<keyof CountersSnapshot, 'rejections'>

/** Monotonic counters; never reset while the process runs (Prometheus counter semantics). */
export class AggregatorCounters {
  readonly #rejections = new Map<ErrorCode, number>()
  readonly #counts: Record<Counter, number> = {
    sessionsCheckedIn: 0,
    roundsStarted: 0,
    roundsPublished: 0,
    roundsAborted: 0,
    uploadsAccepted: 0,
    participantsDropped: 0,
  }

  /** Counts one rejection with `code`. */
  reject(code: ErrorCode): void {
    this.#rejections.set(code, (this.#rejections.get(code) ?? 0) + 1)
  }

  /** Adds one to `counter`. */
  increment(counter: Counter): void {
    this.#counts[counter]++
  }

  snapshot(): CountersSnapshot {
    return { rejections: Object.fromEntries(this.#rejections), ...this.#counts }
  }
}
