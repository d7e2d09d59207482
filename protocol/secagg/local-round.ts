/**
 * Runs one group of secure aggregation inside one process: real clients, real server, real
 * cryptography, messages passed through JSON as they would be on the wire. Used by the tests,
 * `hearth simulate secagg` and the benchmark. Dropouts are injected by stage; clients run one
 * after another so that each one's time is its own.
 */
import { HearthError } from '../errors.ts'
import type { SecAggClientOptions } from './client.ts'
import { SecAggClient } from './client.ts'
import type { Outgoing, SecAggServerMessage } from './messages.ts'
import { SecAggMessageType, SecAggStage } from './messages.ts'
import type { SecAggResult, SecAggServerConfig, StageCounts } from './server.ts'
import { SecAggServer, ServerState } from './server.ts'

/** The stage whose message a client never sends (it is gone from then on), or none. */
export type DropoutPoint = SecAggStage | undefined

export interface LocalRoundOptions {
  readonly config: SecAggServerConfig
  /** One quantized input per client, index 1 first. */
  readonly inputs: readonly Uint32Array[]
  readonly dropouts?: readonly DropoutPoint[]
  /** Milliseconds clock for timings (default `Date.now`; pass `performance.now` where typed). */
  readonly clock?: () => number
  readonly clientOptions?: SecAggClientOptions
  /**
   * Lets a test alter what the server sends a client (tampering, replays); return the message
   * to deliver. Applied after the JSON round trip.
   */
  readonly intercept?: (to: number, message: SecAggServerMessage) => unknown
  /**
   * How many clients of a stage compute at the same time (default 1). More is faster on
   * several cores, as a real cohort would be, but per-client times then overlap. Replies reach
   * the server in index order either way.
   */
  readonly concurrentClients?: number
}

export interface LocalRoundReport {
  readonly completed: boolean
  readonly result?: SecAggResult
  readonly error?: HearthError
  readonly counts: StageCounts
  /** Compute time of each client in its stage methods, ms (index 1 first). */
  readonly clientMs: readonly number[]
  /** Server compute time, all stages, ms. */
  readonly serverMs: number
  /** Server time closing the Unmasking stage (mask removal), ms. */
  readonly unmaskMs: number
  /** Bytes each client sent (JSON text plus binary frames). */
  readonly uploadBytes: readonly number[]
  /** Bytes each client received. */
  readonly downloadBytes: readonly number[]
  /** Errors clients raised (they then left the group), by index. */
  readonly clientErrors: ReadonlyMap<number, HearthError>
  /** Messages the server refused, by sender (those clients then count as dropped). */
  readonly serverRejections: ReadonlyMap<number, HearthError>
}

const STAGE_OF: Partial<Record<string, SecAggStage>> = {
  [SecAggMessageType.Plan]: SecAggStage.AdvertiseKeys,
  [SecAggMessageType.Keys]: SecAggStage.ShareKeys,
  [SecAggMessageType.Shares]: SecAggStage.MaskedInputCollection,
  [SecAggMessageType.ConsistencyRequest]: SecAggStage.ConsistencyCheck,
  [SecAggMessageType.UnmaskRequest]: SecAggStage.Unmasking,
}

/** Runs a whole group; never throws for protocol outcomes (they are in the report). */
export async function runLocalRound(options: LocalRoundOptions): Promise<LocalRoundReport> {
  const clock = options.clock ?? Date.now
  const n = options.config.parameters.groupSize
  if (options.inputs.length !== n) throw new RangeError(`inputs must hold ${n} vectors, got ${options.inputs.length}`)
  const clientMs = new Array<number>(n).fill(0)
  const uploadBytes = new Array<number>(n).fill(0)
  const downloadBytes = new Array<number>(n).fill(0)
  const clientErrors = new Map<number, HearthError>()
  const serverRejections = new Map<number, HearthError>()
  const clients = new Map<number, SecAggClient>()
  const gone = new Set<number>()
  let serverMs = 0
  let unmaskMs = 0
  const now = Date.now()

  const t0 = clock()
  const server = new SecAggServer(options.config)
  let outgoing: Outgoing[] = server.start(now)
  serverMs += clock() - t0

  type Reply = { readonly to: number; readonly frame?: Uint8Array; readonly text?: string }

  /** Delivers one message to client `to`; returns what it sends back, if anything. */
  async function deliver(to: number, message: SecAggServerMessage): Promise<Reply | undefined> {
    const text = JSON.stringify(message)
    downloadBytes[to - 1] = (downloadBytes[to - 1] as number) + text.length
    const wire: unknown = JSON.parse(text)
    const delivered = options.intercept === undefined ? wire : options.intercept(to, wire as SecAggServerMessage)
    const stage = STAGE_OF[message.type]
    if (stage !== undefined && options.dropouts?.[to - 1] === stage) {
      gone.add(to)
      clients.get(to)?.abort()
      return undefined
    }
    const start = clock()
    try {
      if (message.type === SecAggMessageType.Plan) {
        const client = new SecAggClient(delivered, options.clientOptions)
        clients.set(to, client)
        return { to, text: JSON.stringify(await client.advertiseKeys()) }
      }
      const client = clients.get(to)
      if (client === undefined) return undefined
      const reply = await client.handle(delivered, () => options.inputs[to - 1] as Uint32Array)
      if (reply === undefined) return undefined
      return reply.kind === 'masked-input' ? { to, frame: reply.frame } : { to, text: JSON.stringify(reply.message) }
    } catch (error) {
      if (!(error instanceof HearthError)) throw error
      clientErrors.set(to, error)
      gone.add(to)
      return undefined
    } finally {
      clientMs[to - 1] = (clientMs[to - 1] as number) + clock() - start
    }
  }

  while (outgoing.length > 0) {
    const live = outgoing.filter(({ to }) => !gone.has(to))
    const width = Math.max(1, options.concurrentClients ?? 1)
    for (let i = 0; i < live.length; i += width) {
      const replies = await Promise.all(live.slice(i, i + width).map(({ to, message }) => deliver(to, message)))
      for (const reply of replies) {
        if (reply === undefined) continue
        uploadBytes[reply.to - 1] = (uploadBytes[reply.to - 1] as number) + (reply.frame?.byteLength ?? reply.text?.length ?? 0)
        const s = clock()
        try {
          if (reply.frame !== undefined) server.receiveMaskedInput(reply.to, reply.frame, now)
          else server.receive(reply.to, JSON.parse(reply.text as string) as unknown, now)
        } catch (error) {
          // The server refused the message: to the round, that client has dropped out.
          if (!(error instanceof HearthError)) throw error
          serverRejections.set(reply.to, error)
          gone.add(reply.to)
        } finally {
          serverMs += clock() - s
        }
      }
    }
    if (server.state === ServerState.Completed || server.state === ServerState.Aborted) break
    const s = clock()
    const unmasking = server.state === ServerState.Unmasking
    outgoing = await server.advance(now)
    const spent = clock() - s
    serverMs += spent
    if (unmasking) unmaskMs = spent
  }

  const completed = server.state === ServerState.Completed
  return {
    completed,
    ...(completed ? { result: server.result() } : {}),
    ...(server.error === undefined ? {} : { error: server.error }),
    counts: server.counts,
    clientMs,
    serverMs,
    unmaskMs,
    uploadBytes,
    downloadBytes,
    clientErrors,
    serverRejections,
  }
}
