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

/** Largest JSON control message accepted. A check-in is well under 1 KiB. */
export const CONTROL_MESSAGE_MAX_BYTES = 16 * 1024

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
 * Parses one text message. Throws `HEARTH_ERR_BODY_TOO_LARGE` above
 * {@link CONTROL_MESSAGE_MAX_BYTES}, `HEARTH_ERR_UNSUPPORTED_PROTOCOL` for a check-in in another
 * protocol version (checked before the rest of the shape, which that version may change), and
 * `HEARTH_ERR_MALFORMED_MESSAGE` for anything else that is not a valid message.
 */
export function parseClientMessage(data: Uint8Array): ClientMessage {
  if (data.byteLength > CONTROL_MESSAGE_MAX_BYTES) {
    throw new HearthError('HEARTH_ERR_BODY_TOO_LARGE', `control messages are limited to ${CONTROL_MESSAGE_MAX_BYTES} bytes, got ${data.byteLength}`)
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

function describeFirstError(value: unknown): string {
  const [first] = checkCheckin.Errors(value)
  return first === undefined ? 'invalid check-in' : `check-in ${first.instancePath || '/'} ${first.message}`
}
