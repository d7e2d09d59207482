/**
 * When the worker trains on its own (DESIGN.md §2.3): while the page is idle or hidden, once
 * enough new events arrived and enough time passed since the last run. Training itself runs in
 * the worker, within the schedule's time and memory budget, so the page never blocks on it.
 *
 * The page side only decides *when*: `IdleSignal` says the page is idle or hidden (in browsers
 * `requestIdleCallback` and `visibilitychange`, see `browserIdleSignal`; tests fire it by hand).
 */
import type { TrainingPlan } from '../protocol/messages.ts'
import type { HearthWorkerApi, LocalTrainingResult } from '../worker/api.ts'
import type { TrainingEventDetail } from './events.ts'
import type { TrainingSchedule } from './options.ts'

export type IdleTrigger = TrainingEventDetail['trigger']

/** Tells when the page is idle or hidden. */
export interface IdleSignal {
  /** Calls `run` whenever the page becomes idle or hidden; returns a function that stops it. */
  subscribe(run: (trigger: IdleTrigger) => void): () => void
}

export interface TrainingSchedulerOptions {
  readonly schedule: Required<TrainingSchedule>
  readonly plan: TrainingPlan
  readonly worker: Pick<HearthWorkerApi, 'trainLocal'>
  readonly signal: IdleSignal
  /** False while personalization is paused or Hearth is closing. */
  readonly enabled: () => boolean
  /** Writes buffered events before a run reads them. */
  readonly flush: () => Promise<void>
  readonly onTrained: (detail: TrainingEventDetail) => void
  readonly onError: (error: unknown) => void
  readonly now?: () => number
}

export class TrainingScheduler {
  readonly #options: TrainingSchedulerOptions
  readonly #now: () => number
  readonly #stop: () => void
  #newEvents = 0
  #lastRun = -Infinity
  #running: Promise<void> | null = null

  constructor(options: TrainingSchedulerOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
    this.#stop = options.signal.subscribe((trigger) => void this.maybeTrain(trigger))
  }

  /** Counts recorded events towards the next run. */
  noteEvents(count: number): void {
    this.#newEvents += count
  }

  /** Forgets counted events (after their deletion). */
  reset(): void {
    this.#newEvents = 0
  }

  /** Trains now if the schedule allows; resolves when that run (if any) is over. */
  maybeTrain(trigger: IdleTrigger): Promise<void> {
    const { schedule } = this.#options
    if (this.#running !== null) return this.#running
    if (!this.#options.enabled() || this.#newEvents < schedule.minNewEvents) return Promise.resolve()
    if (this.#now() - this.#lastRun < schedule.minIntervalMs) return Promise.resolve()
    const counted = this.#newEvents
    this.#running = (async () => {
      try {
        await this.#options.flush()
        const result: LocalTrainingResult = await this.#options.worker.trainLocal(this.#options.plan, schedule.budget)
        this.#newEvents = Math.max(0, this.#newEvents - counted)
        this.#lastRun = this.#now()
        this.#options.onTrained({ ...result, trigger })
      } catch (error) {
        this.#lastRun = this.#now()
        this.#options.onError(error)
      } finally {
        this.#running = null
      }
    })()
    return this.#running
  }

  /** Stops listening; resolves when a run in progress is over. */
  async stop(): Promise<void> {
    this.#stop()
    await this.#running
  }
}

/** The idle signal of a browser page: `requestIdleCallback`, and `visibilitychange` to hidden. */
export function browserIdleSignal(pollMs = 30_000): IdleSignal {
  return {
    subscribe(run) {
      let stopped = false
      let idleHandle: number | undefined
      const onVisibility = (): void => {
        if (document.visibilityState === 'hidden') run('hidden')
      }
      const wait = (): void => {
        if (stopped) return
        // requestIdleCallback (no timeout: only a genuinely idle main thread) fires once per
        // idle period; it is re-armed after `pollMs` so that a page idling for hours does not
        // spin. Without it (Safari), a timer stands in: training is in the worker anyway.
        if (typeof requestIdleCallback === 'function') {
          idleHandle = requestIdleCallback(() => {
            run('idle')
            setTimeout(wait, pollMs)
          })
        } else {
          setTimeout(() => {
            run('idle')
            wait()
          }, pollMs)
        }
      }
      document.addEventListener('visibilitychange', onVisibility)
      wait()
      return () => {
        stopped = true
        document.removeEventListener('visibilitychange', onVisibility)
        if (idleHandle !== undefined && typeof cancelIdleCallback === 'function') cancelIdleCallback(idleHandle)
      }
    },
  }
}
