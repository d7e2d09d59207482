/**
 * One device session as the round engine sees it: a transport to send on, the model it checked
 * in for, and the round it takes part in. Transport-agnostic, so the engine is tested and driven
 * the same way whether the other end is a WebSocket or a test double.
 */
import { randomBytes } from 'node:crypto'
import type { ServerMessage } from '../../protocol/messages.ts'
import type { Round } from './round.ts'

/** How the engine reaches one client. The rounds plugin implements it over a WebSocket. */
export interface SessionTransport {
  send(message: ServerMessage): void
  /** Closes the connection with a WebSocket close code (RFC 6455 §7.4.1) and a short reason. */
  close(code: number, reason: string): void
}

/** WebSocket close codes used by the aggregator (RFC 6455 §7.4.1). */
export const CloseCode = {
  /** The server is going away (shutdown). */
  GoingAway: 1001,
  /** The session broke a policy: bad app key, unsupported protocol, unknown model. */
  PolicyViolation: 1008,
  /** A message exceeded the size bound; `ws` sends this itself when `maxPayload` is exceeded. */
  MessageTooBig: 1009,
} as const

export class ClientSession {
  /** Opaque per-connection pseudonym (128 random bits); never tied to a device across sessions. */
  readonly id = randomBytes(16).toString('base64url')
  readonly #transport: SessionTransport
  /** The model this session checked in for; undefined before check-in. */
  model: string | undefined
  /** The round this session was selected for, until that round ends. */
  round: Round | undefined
  /** False once the connection closed or the session was refused. */
  open = true

  constructor(transport: SessionTransport) {
    this.#transport = transport
  }

  /** Sends `message` unless the connection is gone. */
  send(message: ServerMessage): void {
    if (this.open) this.#transport.send(message)
  }

  /** Closes the connection; later sends are dropped. */
  close(code: number, reason: string): void {
    if (!this.open) return
    this.open = false
    this.#transport.close(code, reason)
  }
}
