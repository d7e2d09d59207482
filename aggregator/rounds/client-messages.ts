/**
 * Schemas and parsing of the JSON control messages clients send (`protocol/messages.ts`,
 * `ClientMessage`). Unknown extra fields are allowed, so a newer client can add optional fields
 * without a protocol bump; anything incompatible bumps `PROTOCOL_VERSION` instead.
 */
import { Type } from 'typebox'
import type { Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { HearthError } from '../../protocol/errors.ts'
import { PROTOCOL_VERSION } from '../../protocol/messages.ts'
import type { CheckinMessage, ClientMessage } from '../../protocol/messages.ts'
import { SecAggMessageType } from '../../protocol/secagg/messages.ts'
import type { SecAggClientMessage } from '../../protocol/secagg/messages.ts'
import type { ResolvedSecAgg } from './secagg-options.ts'

/** Largest JSON control message accepted. A check-in is well under 1 KiB. */
export const CONTROL_MESSAGE_MAX_BYTES = 16 * 1024

/**
 * Bytes a secure-aggregation message may take per neighbour: a ShareKeys envelope is about 210
 * bytes of JSON (a 124-byte AES-GCM ciphertext in base64 with its indices), a revealed share
 * about 80.
 */
const SECAGG_BYTES_PER_NEIGHBOUR = 256

/** The control-message bound: secure-aggregation messages grow with the group size. */
export function controlMessageLimit(secagg: ResolvedSecAgg | null): number {
  return secagg === null ? CONTROL_MESSAGE_MAX_BYTES : CONTROL_MESSAGE_MAX_BYTES + secagg.maxGroupSize * SECAGG_BYTES_PER_NEIGHBOUR
}

const SECAGG_CLIENT_TYPES: ReadonlySet<unknown> = new Set<string>([
  SecAggMessageType.AdvertiseKeys,
  SecAggMessageType.ShareKeys,
  SecAggMessageType.ConsistencySignature,
  SecAggMessageType.UnmaskShares,
])

export const CheckinSchema = Type.Object({
  type: Type.Literal('checkin'),
  protocol: Type.Integer({ minimum: 0 }),
  appKey: Type.String({ minLength: 1, maxLength: 256 }),
  model: Type.String({ minLength: 1, maxLength: 64 }),
  modelVersion: Type.Optional(Type.Integer({ minimum: 0 })),
})

// Compile-time proof that the schema describes the protocol type.
const _checkinFits: (message: Static<typeof CheckinSchema>) => CheckinMessage = (message) => message

const checkCheckin = Compile(CheckinSchema)
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Parses one text message. Throws `HEARTH_ERR_BODY_TOO_LARGE` above `limit` (a check-in above
 * {@link CONTROL_MESSAGE_MAX_BYTES}), `HEARTH_ERR_UNSUPPORTED_PROTOCOL` for a check-in in another
 * protocol version (checked before the rest of the shape, which that version may change), and
 * `HEARTH_ERR_MALFORMED_MESSAGE` for anything else that is not a valid message.
 */
export function parseClientMessage(data: Uint8Array, limit: number = CONTROL_MESSAGE_MAX_BYTES): ClientMessage {
  if (data.byteLength > limit) {
    throw new HearthError('HEARTH_ERR_BODY_TOO_LARGE', `control messages are limited to ${limit} bytes, got ${data.byteLength}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(utf8.decode(data))
  } catch {
    throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', 'not UTF-8 JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', 'a message is a JSON object')
  }
  const { type, protocol } = parsed as { type?: unknown; protocol?: unknown }
  if (SECAGG_CLIENT_TYPES.has(type)) return secAggMessage(parsed)
  if (data.byteLength > CONTROL_MESSAGE_MAX_BYTES) {
    throw new HearthError('HEARTH_ERR_BODY_TOO_LARGE', `control messages other than secure aggregation's are limited to ${CONTROL_MESSAGE_MAX_BYTES} bytes, got ${data.byteLength}`)
  }
  switch (type) {
    case 'checkin':
      if (typeof protocol === 'number' && protocol !== PROTOCOL_VERSION) {
        throw new HearthError('HEARTH_ERR_UNSUPPORTED_PROTOCOL', `this aggregator speaks protocol ${PROTOCOL_VERSION}, the client ${protocol}`)
      }
      if (!checkCheckin.Check(parsed)) throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', describeFirstError(parsed))
      return _checkinFits(parsed)
    default:
      throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', `unknown message type ${JSON.stringify(type)}`)
  }
}

/**
 * A secure-aggregation message, checked here for its address only: `SecAggServer.receive`
 * validates every other field against the group's state (`protocol/secagg/validate.ts`).
 */
function secAggMessage(parsed: object): SecAggClientMessage {
  const { roundId, groupId } = parsed as { roundId?: unknown; groupId?: unknown }
  if (!Number.isInteger(roundId) || !Number.isInteger(groupId)) {
    throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', 'a secure-aggregation message names its roundId and groupId')
  }
  return parsed as SecAggClientMessage
}

function describeFirstError(value: unknown): string {
  const [first] = checkCheckin.Errors(value)
  return first === undefined ? 'invalid check-in' : `check-in ${first.instancePath || '/'} ${first.message}`
}
