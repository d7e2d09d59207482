/**
 * Batches recorded events in memory and writes them to the worker's store in one transaction,
 * so `record()` costs the app a push, not an IndexedDB round trip.
 */
import type { InteractionEvent } from '../protocol/events.ts'

export class RecordBuffer {
  readonly #write: (events: InteractionEvent[]) => Promise<void>
  readonly #intervalMs: number
  #pending: InteractionEvent[] = []
  #timer: ReturnType<typeof setTimeout> | null = null
  #writing: Promise<void> = Promise.resolve()

  /** Largest batch before a write starts without waiting for the timer. */
  static readonly MAX_BATCH = 500

  constructor(write: (events: InteractionEvent[]) => Promise<void>, intervalMs: number) {
    this.#write = write
    this.#intervalMs = intervalMs
  }

  /** Number of events not yet handed to the store. */
  get pending(): number {
    return this.#pending.length
  }

  push(event: InteractionEvent): void {
    this.#pending.push(event)
    if (this.#pending.length >= RecordBuffer.MAX_BATCH) void this.flush()
    else this.#timer ??= setTimeout(() => void this.flush(), this.#intervalMs)
  }

  /** Drops everything pending (the user deleted their data before it was written). */
  discard(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#pending = []
  }

  /** Writes everything pending; resolves when it is stored (rejects with the store's error). */
  flush(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const batch = this.#pending
    this.#pending = []
    // Writes are chained so events reach the store in the order they were recorded.
    const done = this.#writing.then(() => (batch.length === 0 ? undefined : this.#write(batch)))
    this.#writing = done.catch(() => undefined)
    return done
  }
}
