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
  /** Bytes of client messages received over WebSocket, text and binary. */
  readonly bytesReceived: number
  /** Client sessions connected now (a gauge, not a counter). */
  readonly connectedClients: number
}

/** Told how long a round stage took, in ms. */
export type StageListener = (stage: string, ms: number) => void

type Counter = Exclude<keyof CountersSnapshot, 'rejections' | 'bytesReceived' | 'connectedClients'>

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

  #bytesReceived = 0
  #connected = 0
  // Durations go to listeners (a histogram) rather than being kept, so memory stays bounded.
  readonly #stageListeners = new Set<StageListener>()

  /** Adds one to `counter`. */
  increment(counter: Counter): void {
    this.#counts[counter]++
  }

  /** Counts `bytes` of one received client message. */
  received(bytes: number): void {
    this.#bytesReceived += bytes
  }

  /** A client session opened (+1) or closed (-1). */
  connection(change: 1 | -1): void {
    this.#connected += change
  }

  /** Records that a round's `stage` took `ms`. */
  stage(stage: string, ms: number): void {
    for (const listener of this.#stageListeners) listener(stage, ms)
  }

  /** Calls `listener` for every stage recorded from now on; returns the function that stops it. */
  onStage(listener: StageListener): () => void {
    this.#stageListeners.add(listener)
    return () => this.#stageListeners.delete(listener)
  }

  snapshot(): CountersSnapshot {
    return { rejections: Object.fromEntries(this.#rejections), ...this.#counts, bytesReceived: this.#bytesReceived, connectedClients: this.#connected }
  }
}
