/**
 * The device's WebSocket to the aggregator: checks in, hands server messages to a listener,
 * sends binary frames, and reconnects with jittered exponential backoff when the connection
 * drops (unless the aggregator refused the session, which retrying cannot fix).
 */
import { errorFromBody, HearthError } from '../../protocol/errors.ts'
import type { ErrorCode } from '../../protocol/errors.ts'
import { PROTOCOL_VERSION, ROUTES } from '../../protocol/messages.ts'
import type { CheckinMessage, ClientMessage, ServerMessage } from '../../protocol/messages.ts'

/** The subset of the WHATWG WebSocket that Hearth uses; the `ws` package satisfies it in Node. */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  send(data: string | ArrayBufferView | ArrayBuffer): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'open' | 'close' | 'error', listener: () => void): void
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
}

/** Creates a socket to `url`: `(url) => new WebSocket(url)` in browsers. */
export type SocketFactory = (url: string) => WebSocketLike

const OPEN = 1
/** Codes the aggregator uses to refuse a session; reconnecting would be refused again. */
const FATAL: ReadonlySet<ErrorCode> = new Set(['HEARTH_ERR_UNAUTHORIZED', 'HEARTH_ERR_UNSUPPORTED_PROTOCOL', 'HEARTH_ERR_UNKNOWN_MODEL'])

export interface RoundSocketOptions {
  readonly aggregatorUrl: URL
  readonly appKey: string
  readonly model: string
  readonly createSocket: SocketFactory
  /** Current model version, sent at check-in. */
  readonly modelVersion: () => number | null
  readonly onMessage: (message: ServerMessage) => void
  /** Reports transport problems; the socket keeps retrying unless `fatal`. */
  readonly onError: (error: HearthError, fatal: boolean) => void
  /**
   * The connection closed unexpectedly (not by `stop()`); the socket reconnects by itself. A
   * round planned on the lost connection is over for this device: what it still holds must not
   * go out on the next one, where the aggregator would refuse it (or, mid-SecAgg, misread it).
   */
  readonly onDisconnect?: () => void
  readonly minBackoffMs?: number
  readonly maxBackoffMs?: number
}

export class RoundSocket {
  readonly #options: RoundSocketOptions
  #socket: WebSocketLike | null = null
  #stopped = false
  #attempt = 0
  #retryTimer: ReturnType<typeof setTimeout> | null = null

  constructor(options: RoundSocketOptions) {
    this.#options = options
  }

  /** True while the socket is open and checked in. */
  get connected(): boolean {
    return this.#socket !== null && this.#socket.readyState === OPEN
  }

  start(): void {
    this.#stopped = false
    this.#connect()
  }

  /** Closes the socket for good. */
  stop(): void {
    this.#stopped = true
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
    this.#retryTimer = null
    this.#socket?.close(1000, 'client stopped')
    this.#socket = null
  }

  /** Sends a binary frame; throws `HEARTH_ERR_TRANSPORT` when not connected. */
  sendBinary(bytes: Uint8Array): void {
    this.#open().send(bytes)
  }

  /** Sends a JSON control message (secure aggregation's stages); throws `HEARTH_ERR_TRANSPORT` when not connected. */
  sendMessage(message: ClientMessage): void {
    this.#open().send(JSON.stringify(message))
  }

  #open(): WebSocketLike {
    const socket = this.#socket
    if (socket === null || socket.readyState !== OPEN) {
      throw new HearthError('HEARTH_ERR_TRANSPORT', 'the round socket is not connected')
    }
    return socket
  }

  #connect(): void {
    const url = new URL(ROUTES.roundsSocket, this.#options.aggregatorUrl)
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    let socket: WebSocketLike
    try {
      socket = this.#options.createSocket(url.toString())
    } catch (cause) {
      this.#options.onError(new HearthError('HEARTH_ERR_TRANSPORT', `cannot open ${url}`, { cause }), false)
      this.#scheduleRetry()
      return
    }
    socket.binaryType = 'arraybuffer'
    this.#socket = socket
    socket.addEventListener('open', () => {
      const version = this.#options.modelVersion()
      const checkin: CheckinMessage = {
        type: 'checkin',
        protocol: PROTOCOL_VERSION,
        appKey: this.#options.appKey,
        model: this.#options.model,
        ...(version === null ? {} : { modelVersion: version }),
      }
      socket.send(JSON.stringify(checkin))
    })
    socket.addEventListener('message', (event) => this.#receive(event.data))
    socket.addEventListener('close', () => {
      if (this.#socket === socket) this.#socket = null
      if (this.#stopped) return
      this.#options.onDisconnect?.()
      this.#scheduleRetry()
    })
    // 'error' is always followed by 'close', which schedules the retry.
    socket.addEventListener('error', () => {
      this.#options.onError(new HearthError('HEARTH_ERR_TRANSPORT', `the connection to ${url} failed`), false)
    })
  }

  #receive(data: unknown): void {
    if (typeof data !== 'string') return // the aggregator sends no binary frames to clients
    let message: ServerMessage
    try {
      message = JSON.parse(data) as ServerMessage
    } catch (cause) {
      this.#options.onError(new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', 'the aggregator sent invalid JSON', { cause }), false)
      return
    }
    if (typeof message !== 'object' || message === null || typeof message.type !== 'string') return
    if (message.type === 'welcome') this.#attempt = 0
    if (message.type === 'error' && message.roundId === undefined) {
      const fatal = FATAL.has(message.code)
      this.#options.onError(errorFromBody(message), fatal)
      if (fatal) this.stop()
      return
    }
    this.#options.onMessage(message)
  }

  #scheduleRetry(): void {
    if (this.#stopped || this.#retryTimer !== null) return
    const min = this.#options.minBackoffMs ?? 500
    const max = this.#options.maxBackoffMs ?? 30_000
    // Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015): spreads the
    // reconnections of many devices after an aggregator restart.
    const ceiling = Math.min(max, min * 2 ** this.#attempt++)
    const delay = min + Math.random() * (ceiling - min)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null
      if (!this.#stopped) this.#connect()
    }, delay)
  }
}
