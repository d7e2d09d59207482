/**
 * Simulated devices for the load benchmark: protocol-level WebSocket clients (the `ws`
 * package), many per process, that check in and, when selected, upload a precomputed delta at
 * once (no TensorFlow.js: the benchmark loads the aggregator, not the devices). In a secure
 * round each device runs its group's protocol with the worker's own `SecAggSessions`, so the
 * masked input and every control message are the real ones.
 *
 * Every device keeps only what the report needs: per round, when its plan arrived, how long its
 * upload took to be acknowledged, and when the result arrived. Times are epoch milliseconds with
 * sub-millisecond precision (`performance.timeOrigin + performance.now()`), comparable with the
 * aggregator's `Date.now()` records because both processes run on the same host.
 */
import WebSocket from 'ws'
import { encodeFrame, FrameKind } from '../protocol/frames.ts'
import { AggregationMode, PROTOCOL_VERSION } from '../protocol/messages.ts'
import type { ClientMessage, RoundPlanMessage, ServerMessage } from '../protocol/messages.ts'
import { SecAggMessageType } from '../protocol/secagg/messages.ts'
import type { SecAggServerMessage } from '../protocol/secagg/messages.ts'
import { SecAggSessions } from '../worker/secagg/secagg-session.ts'

export interface FleetOptions {
  readonly wsUrl: string
  readonly appKey: string
  readonly model: string
  /** Devices this fleet opens. */
  readonly clients: number
  /** Index of this fleet's first device among all fleets' (it picks the source addresses). */
  readonly firstDevice: number
  /** Handshakes in flight at once: the accept queue (somaxconn, often 4096) must not overflow. */
  readonly connectConcurrency: number
  /** Each device waits a uniform random time in [0, trainMs) before uploading (0: at once). */
  readonly trainMs: number
}

/** What one round looked like from this fleet's devices. */
export interface FleetRound {
  readonly roundId: number
  /** Epoch ms at which each selected device received its plan. */
  readonly plans: number[]
  /** Milliseconds from sending each upload (or masked input) to its `upload-accepted`. */
  readonly acks: number[]
  /** Epoch ms of the last `upload-accepted` (0 before any): the uploads closed about then. */
  lastAckAt: number
  /** Epoch ms at which each `round-result` arrived. */
  readonly results: number[]
  /** `error` messages received in this round, by code. */
  readonly errors: Record<string, number>
}

export interface FleetReport {
  readonly connected: number
  readonly checkedIn: number
  /** Sockets still open when the report was taken. */
  readonly open: number
  readonly failedConnects: number
  /** Why connections failed or closed early (error message or close code), counted. */
  readonly failures: Record<string, number>
  /** Epoch ms at which the last check-in of the ramp was sent. */
  readonly lastCheckinSentAt: number
  readonly rounds: FleetRound[]
  /** CPU this process used since the fleet started, seconds (user + system). */
  readonly cpuSeconds: number
}

/**
 * Devices that share one source address. The aggregator limits socket upgrades per address
 * (`aggregator/plugins/rate-limit.ts`, 600 a minute by default); real devices come from many
 * addresses, so the simulated ones are spread over loopback addresses (all of 127.0.0.0/8 is
 * local on Linux), this many on each.
 */
export const DEVICES_PER_ADDRESS = 250

/** The loopback source address of device `index`: 127.1.x.y, y in 1..250. */
export function sourceAddress(index: number): string {
  const address = Math.floor(index / DEVICES_PER_ADDRESS)
  return `127.1.${Math.floor(address / 250) % 256}.${(address % 250) + 1}`
}

export function epochNow(): number {
  return performance.timeOrigin + performance.now()
}

function count(into: Record<string, number>, key: string): void {
  into[key] = (into[key] ?? 0) + 1
}

export class DeviceFleet {
  readonly #o: FleetOptions
  readonly #sockets = new Set<WebSocket>()
  readonly #rounds = new Map<number, FleetRound>()
  /** Update frames by round and vector length: every device of a round sends the same bytes. */
  readonly #frames = new Map<string, Uint8Array>()
  readonly #failures: Record<string, number> = {}
  readonly #cpuStart = process.cpuUsage()
  #connected = 0
  #checkedIn = 0
  #failedConnects = 0
  #lastCheckinSentAt = 0
  /** Devices connected but not checked in yet. */
  readonly #checkIns: (() => Promise<void>)[] = []

  constructor(options: FleetOptions) {
    this.#o = options
  }

  /**
   * Opens every device's socket, `connectConcurrency` handshakes at a time, without checking in:
   * no round can start while the sockets are still being opened, so the ramp measures
   * connections alone.
   */
  async connect(onProgress?: (connected: number) => void): Promise<void> {
    let next = 0
    const lane = async (): Promise<void> => {
      while (next < this.#o.clients) {
        const index = this.#o.firstDevice + next++
        const checkIn = await this.#device(sourceAddress(index))
        if (checkIn !== undefined) this.#checkIns.push(checkIn)
        onProgress?.(this.#connected)
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#o.connectConcurrency, this.#o.clients) }, lane))
  }

  /** Checks every connected device in at once; resolves once each was welcomed or failed. */
  async checkIn(): Promise<void> {
    await Promise.all(this.#checkIns.splice(0).map((checkIn) => checkIn()))
  }

  report(): FleetReport {
    const cpu = process.cpuUsage(this.#cpuStart)
    let open = 0
    for (const socket of this.#sockets) if (socket.readyState === WebSocket.OPEN) open++
    return {
      connected: this.#connected,
      checkedIn: this.#checkedIn,
      open,
      failedConnects: this.#failedConnects,
      failures: { ...this.#failures },
      lastCheckinSentAt: this.#lastCheckinSentAt,
      rounds: [...this.#rounds.values()],
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    }
  }

  /** Closes every socket and resolves once they are all closed. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.#sockets].map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.readyState === WebSocket.CLOSED) return resolve()
            socket.once('close', () => resolve())
            socket.close()
          }),
      ),
    )
  }

  /**
   * One device: resolves once its socket is open, with the function that checks it in (and
   * resolves once it is welcomed or failed), or with nothing if the connection failed. It then
   * lives on its events.
   */
  #device(localAddress: string): Promise<(() => Promise<void>) | undefined> {
    return new Promise((resolve) => {
      // No per-message deflate (the aggregator's `ws` declines it by default anyway): deltas do
      // not compress, and a zlib context per socket would weigh on thousands of them.
      const socket = new WebSocket(this.#o.wsUrl, { perMessageDeflate: false, localAddress })
      this.#sockets.add(socket)
      let welcomed = false
      let secure: SecAggSessions | undefined
      /** Secure-aggregation messages are answered one at a time, in order (as `client/secure-round.ts`). */
      let chain: Promise<void> = Promise.resolve()
      const plans = new Map<number, RoundPlanMessage>()
      /** When this device sent its upload, by round, until acknowledged. */
      const sent = new Map<number, number>()
      const send = (message: ClientMessage): void => socket.send(JSON.stringify(message))
      let opened = false
      let onWelcome = (): void => {}
      const fail = (why: string): void => {
        count(this.#failures, why)
        if (!opened) {
          this.#failedConnects++
          opened = true
          resolve(undefined)
        } else if (!welcomed) {
          welcomed = true
          onWelcome()
        }
      }
      socket.once('open', () => {
        opened = true
        this.#connected++
        resolve(
          () =>
            new Promise<void>((welcome) => {
              onWelcome = welcome
              send({ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: this.#o.appKey, model: this.#o.model })
              this.#lastCheckinSentAt = epochNow()
            }),
        )
      })
      socket.on('error', (error: Error) => fail(error.message))
      socket.on('close', (code) => {
        this.#sockets.delete(socket)
        // A refused handshake was counted by its error already.
        if (opened && code !== 1000 && code !== 1005) fail(`closed with ${code}`)
      })
      socket.on('message', (data, isBinary) => {
        if (isBinary) return
        const at = epochNow()
        const message = JSON.parse(String(data)) as ServerMessage
        switch (message.type) {
          case 'welcome':
            welcomed = true
            this.#checkedIn++
            onWelcome()
            return
          case 'round-plan': {
            this.#round(message.roundId).plans.push(at)
            if (message.aggregation?.mode === AggregationMode.SecAgg) {
              plans.set(message.roundId, message)
              return
            }
            this.#afterTraining(() => {
              sent.set(message.roundId, epochNow())
              socket.send(this.#update(message.roundId, message.vectorLength))
            })
            return
          }
          case 'upload-accepted': {
            const round = this.#round(message.roundId)
            const sentAt = sent.get(message.roundId)
            sent.delete(message.roundId)
            if (sentAt !== undefined) round.acks.push(at - sentAt)
            round.lastAckAt = Math.max(round.lastAckAt, at)
            return
          }
          case 'round-result': {
            this.#round(message.roundId).results.push(at)
            // After the group's messages still queued (its own `secagg/result` among them), so
            // leaving the group does not refuse them.
            const ended = message.roundId
            chain = chain.then(() => {
              plans.delete(ended)
              secure?.abort(ended)
            })
            return
          }
          case 'error':
            count(message.roundId === undefined ? this.#failures : this.#round(message.roundId).errors, message.code)
            return
          default: {
            const plan = plans.get(message.roundId)
            if (plan === undefined) return
            secure ??= new SecAggSessions()
            const sessions = secure
            chain = chain.then(() =>
              this.#secure(sessions, plan, message, send, (frame) => {
                sent.set(plan.roundId, epochNow())
                socket.send(frame)
              }),
            )
          }
        }
      })
    })
  }

  /** Answers one secure-aggregation message of `plan`'s round. */
  async #secure(
    sessions: SecAggSessions,
    plan: RoundPlanMessage,
    message: SecAggServerMessage,
    send: (message: ClientMessage) => void,
    sendBinary: (frame: Uint8Array) => void,
  ): Promise<void> {
    const aggregation = plan.aggregation
    if (aggregation?.mode !== AggregationMode.SecAgg) return
    try {
      if (message.type === SecAggMessageType.Plan) {
        send(await sessions.begin(message, aggregation))
        return
      }
      const delta = message.type === SecAggMessageType.Shares ? deltaOf(plan.vectorLength) : undefined
      if (delta !== undefined) await new Promise<void>((resolve) => this.#afterTraining(resolve))
      const output = await sessions.step(message, delta)
      if (output === undefined) return
      if (output.kind === 'control') send(output.message)
      else sendBinary(output.frame)
    } catch (error) {
      count(this.#round(plan.roundId).errors, error instanceof Error ? error.message : String(error))
    }
  }

  #afterTraining(fn: () => void): void {
    if (this.#o.trainMs <= 0) fn()
    else setTimeout(fn, Math.random() * this.#o.trainMs)
  }

  #round(roundId: number): FleetRound {
    let round = this.#rounds.get(roundId)
    if (round === undefined) {
      round = { roundId, plans: [], acks: [], lastAckAt: 0, results: [], errors: {} }
      this.#rounds.set(roundId, round)
    }
    return round
  }

  #update(roundId: number, length: number): Uint8Array {
    const key = `${roundId}:${length}`
    let frame = this.#frames.get(key)
    if (frame === undefined) {
      frame = encodeFrame({ kind: FrameKind.Update, id: roundId, values: deltaOf(length) })
      this.#frames.clear() // only the current round's frame is ever needed again
      this.#frames.set(key, frame)
    }
    return frame
  }
}

const deltas = new Map<number, Float32Array>()

/** A small, fixed delta (norm well under any clip bound): what devices "trained". */
function deltaOf(length: number): Float32Array {
  let delta = deltas.get(length)
  if (delta === undefined) {
    delta = Float32Array.from({ length }, (_, i) => ((i % 7) - 3) / 1024)
    deltas.set(length, delta)
  }
  return delta
}
