/**
 * One group of a secure-aggregation round on real sessions: drives a `SecAggServer` from the
 * messages of its sessions, the stage deadlines and the disconnections, and delivers what the
 * server sends. A stage closes as soon as every client still expected has answered or is gone,
 * otherwise at its deadline; the group settles once it completed or aborted.
 *
 * Everything private stays inside the `SecAggServer`, in memory: the masked inputs are added to
 * its running sum in Z_{2^b} as they arrive, and shares live only until unmasking.
 */
import type { FastifyBaseLogger } from 'fastify'
import { HearthError } from '../../protocol/errors.ts'
import type { GroupOutcome } from '../../protocol/secagg/groups.ts'
import type { Outgoing } from '../../protocol/secagg/messages.ts'
import { SecAggServer, ServerState } from '../../protocol/secagg/server.ts'
import type { SecAggServerConfig } from '../../protocol/secagg/server.ts'
import type { SecAggGroupRecord } from '../store/store.ts'
import type { ClientSession } from './session.ts'

export interface GroupRunOptions {
  readonly config: SecAggServerConfig
  /** The group's sessions: index i + 1 is `sessions[i]`. */
  readonly sessions: readonly ClientSession[]
  readonly now: () => number
  readonly log: FastifyBaseLogger
  /** Called once, when the group completed or aborted. */
  readonly onSettled: () => void
}

export class GroupRun {
  readonly groupId: number
  readonly #o: GroupRunOptions
  readonly #server: SecAggServer
  #timer: NodeJS.Timeout | undefined
  #advancing = false
  #settled = false
  /** Set when the group was stopped from outside (shutdown) or failed unexpectedly. */
  #stopped: HearthError | undefined

  constructor(options: GroupRunOptions) {
    this.#o = options
    this.groupId = options.config.groupId
    this.#server = new SecAggServer(options.config)
  }

  get settled(): boolean {
    return this.#settled
  }

  /** Sends each client its `secagg/plan` and opens AdvertiseKeys. */
  start(): void {
    this.#deliver(this.#server.start(this.#o.now()))
    this.#arm()
  }

  /** A control message from client `index`; throws the `HearthError` to answer with. */
  receive(index: number, message: unknown): void {
    this.#live()
    this.#server.receive(index, message, this.#o.now())
    this.#check()
  }

  /** Client `index`'s masked input, added to the running sum; throws the `HearthError` to answer with. */
  receiveMaskedInput(index: number, frame: Uint8Array): void {
    this.#live()
    this.#server.receiveMaskedInput(index, frame, this.#o.now())
    this.#check()
  }

  disconnected(index: number): void {
    if (this.#settled) return
    this.#server.disconnected(index)
    this.#check()
  }

  /** Ends the group without a sum (the aggregator is shutting down). */
  stop(reason: string): void {
    if (this.#settled) return
    this.#settle(new HearthError('HEARTH_ERR_ROUND_ABORTED', reason))
  }

  /** The group's outcome, for `combineGroupSums`. */
  outcome(): GroupOutcome {
    const clients = this.#o.sessions.length
    if (this.#stopped === undefined && this.#server.state === ServerState.Completed) {
      const { sum, survivors } = this.#server.result()
      return { groupId: this.groupId, clients, sum, survivors: survivors.length }
    }
    const error = this.#stopped ?? this.#server.error
    return { groupId: this.groupId, clients, ...(error === undefined ? {} : { error }) }
  }

  /** What the round record says about this group: sizes and counts only. */
  record(): SecAggGroupRecord {
    const { parameters } = this.#o.config
    const counts = this.#server.counts
    const outcome = this.outcome()
    const error = outcome.error
    return {
      groupId: this.groupId,
      clients: outcome.clients,
      degree: parameters.degree,
      threshold: parameters.threshold,
      state: this.#stopped === undefined ? this.#server.state : ServerState.Aborted,
      advertised: counts.advertised ?? null,
      shared: counts.shared ?? null,
      masked: counts.masked ?? null,
      unmasked: counts.unmasked ?? null,
      survivors: outcome.survivors ?? 0,
      contributed: outcome.sum !== undefined,
      reason: error === undefined ? null : `${error.code}: ${error.message}`,
    }
  }

  #live(): void {
    if (this.#settled) throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `group ${this.groupId} has ended`)
    // Closing Unmasking takes a while (mask removal): no late share may join the sum meanwhile.
    // Other stages close synchronously, so a message arriving then is already judged by the next.
    if (this.#advancing && this.#server.state === ServerState.Unmasking) {
      throw new HearthError('HEARTH_ERR_LATE_UPLOAD', `group ${this.groupId} is unmasking its sum`)
    }
  }

  /** Closes the stage early when nobody is left to wait for. */
  #check(): void {
    if (!this.#settled && !this.#advancing && this.#server.stageComplete) this.#advance()
  }

  #advance(): void {
    this.#clearTimer()
    this.#advancing = true
    this.#server.advance(this.#o.now()).then(
      (outgoing) => {
        this.#advancing = false
        if (this.#settled) return
        this.#deliver(outgoing)
        const state = this.#server.state
        if (state === ServerState.Completed || state === ServerState.Aborted) this.#settle(undefined)
        else {
          this.#arm()
          this.#check()
        }
      },
      (error: unknown) => {
        this.#advancing = false
        this.#o.log.error({ err: error }, 'secure aggregation failed')
        this.#settle(error instanceof HearthError ? error : new HearthError('HEARTH_ERR_ROUND_FAILED', String(error), { cause: error }))
      },
    )
  }

  #settle(stopped: HearthError | undefined): void {
    this.#clearTimer()
    this.#stopped = stopped
    this.#settled = true
    const error = stopped ?? this.#server.error
    if (error !== undefined) this.#o.log.warn({ code: error.code }, `secure-aggregation group ended without a sum: ${error.message}`)
    this.#o.onSettled()
  }

  #deliver(outgoing: readonly Outgoing[]): void {
    for (const { to, message } of outgoing) this.#o.sessions[to - 1]?.send(message)
  }

  /** Advances at the current stage's deadline (the server refuses anything after it). */
  #arm(): void {
    this.#clearTimer()
    const wait = Math.max(0, this.#server.deadline - this.#o.now() + 1)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (!this.#settled && !this.#advancing) this.#advance()
    }, wait)
    this.#timer.unref()
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
