/**
 * The one catalogue of Hearth error codes, shared by the client, the worker and the aggregator.
 *
 * Every failure that crosses a boundary (HTTP response, WebSocket message, public client API)
 * carries one of these stable codes. `docs/errors.md` documents each code and how to solve it;
 * a test keeps that table and this catalogue in step.
 */

/** One entry of the catalogue. `status` is the HTTP status where the error can reach HTTP. */
export interface ErrorDefinition {
  readonly status: number
  readonly message: string
}

/** Stable error codes. Never rename or reuse a code: clients and dashboards key on them. */
export const ErrorCatalogue = {
  // Wire format
  HEARTH_ERR_MALFORMED_FRAME: { status: 400, message: 'The binary frame is malformed' },
  HEARTH_ERR_MALFORMED_MESSAGE: { status: 400, message: 'The control message is malformed' },
  HEARTH_ERR_UNSUPPORTED_PROTOCOL: { status: 400, message: 'The protocol version is not supported' },
  HEARTH_ERR_BODY_TOO_LARGE: { status: 413, message: 'The message is larger than allowed' },
  HEARTH_ERR_NOT_FOUND: { status: 404, message: 'Nothing is served at this path' },
  // Access
  HEARTH_ERR_UNAUTHORIZED: { status: 401, message: 'The app key or token is missing or wrong' },
  HEARTH_ERR_RATE_LIMITED: { status: 429, message: 'Too many requests' },
  // Models
  HEARTH_ERR_UNKNOWN_MODEL: { status: 404, message: 'No model has this name' },
  HEARTH_ERR_UNKNOWN_VERSION: { status: 404, message: 'The model has no such version' },
  HEARTH_ERR_MODEL_MISMATCH: { status: 409, message: 'The weights do not fit the model specification' },
  HEARTH_ERR_MODEL_BUSY: { status: 409, message: 'A round of this model is running' },
  // Rounds
  HEARTH_ERR_UNKNOWN_ROUND: { status: 404, message: 'No round has this id' },
  HEARTH_ERR_ROUND_CLOSED: { status: 409, message: 'The round no longer accepts this message' },
  HEARTH_ERR_NOT_SELECTED: { status: 403, message: 'This client was not selected for the round' },
  HEARTH_ERR_LATE_UPLOAD: { status: 409, message: 'The upload arrived after the stage deadline' },
  HEARTH_ERR_DUPLICATE_UPLOAD: { status: 409, message: 'This client already uploaded for the round' },
  HEARTH_ERR_VECTOR_LENGTH: { status: 400, message: 'The update has the wrong number of elements' },
  HEARTH_ERR_VECTOR_VALUE: { status: 400, message: 'The update holds a value outside the allowed range' },
  HEARTH_ERR_ROUND_ABORTED: { status: 409, message: 'The round was aborted' },
  HEARTH_ERR_ROUND_STATE: { status: 409, message: 'The round is not in a state that allows this' },
  HEARTH_ERR_ROUND_FAILED: { status: 500, message: 'The round could not be completed' },
  HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED: { status: 409, message: 'The round would exceed the privacy budget' },
  HEARTH_ERR_PRIVACY_NOISE_SHORTFALL: { status: 409, message: 'Too few noise shares are in a sum to publish it' },
  // Secure aggregation
  HEARTH_ERR_SECAGG_THRESHOLD: { status: 409, message: 'Too few clients remain for secure aggregation' },
  HEARTH_ERR_SECAGG_TAMPERED: { status: 400, message: 'A secure-aggregation message failed authentication' },
  HEARTH_ERR_SECAGG_REPLAY: { status: 409, message: 'A secure-aggregation message was replayed or arrived out of order' },
  HEARTH_ERR_SECAGG_UNSAFE_REQUEST: { status: 403, message: 'The request would reveal both secrets of a client' },
  HEARTH_ERR_REPLICA_LOST: { status: 503, message: 'The aggregator replica running part of the round stopped' },
  // Configuration
  HEARTH_ERR_INVALID_CONFIG: { status: 400, message: 'The configuration is invalid' },
  // Client and device
  HEARTH_ERR_INVALID_ARGUMENT: { status: 400, message: 'An argument is invalid' },
  HEARTH_ERR_NOT_INITIALIZED: { status: 500, message: 'Hearth is not initialized' },
  HEARTH_ERR_STORAGE: { status: 500, message: 'The on-device store failed' },
  HEARTH_ERR_STORAGE_QUOTA: { status: 507, message: 'The on-device store is full' },
  HEARTH_ERR_TRANSPORT: { status: 502, message: 'The connection to the aggregator failed' },
  HEARTH_ERR_BACKEND: { status: 500, message: 'No TensorFlow.js backend could be started' },
  HEARTH_ERR_SERVICE_WORKER: { status: 500, message: 'The offline service worker could not be registered' },
  HEARTH_ERR_INTERNAL: { status: 500, message: 'An internal error occurred' },
} as const satisfies Record<string, ErrorDefinition>

/** A stable Hearth error code, such as `HEARTH_ERR_LATE_UPLOAD`. */
export type ErrorCode = keyof typeof ErrorCatalogue

/** The JSON shape of an error on the wire (HTTP bodies and WebSocket `error` messages). */
export interface ErrorBody {
  readonly code: ErrorCode
  readonly message: string
  readonly statusCode: number
}

/**
 * The error type thrown across Hearth's public surfaces. `code` is stable; `message` adds
 * detail for humans and may change.
 */
export class HearthError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const base = ErrorCatalogue[code].message
    super(detail === undefined ? base : `${base}: ${detail}`, options)
    this.name = 'HearthError'
    this.code = code
    this.statusCode = ErrorCatalogue[code].status
  }

  /** The wire form of this error. */
  toBody(): ErrorBody {
    return { code: this.code, message: this.message, statusCode: this.statusCode }
  }
}

/** True when `code` names an entry of the catalogue. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ErrorCatalogue, code)
}

/** Rebuilds a `HearthError` from its wire form, keeping unknown codes as internal errors. */
export function errorFromBody(body: { code?: unknown; message?: unknown }): HearthError {
  const code = isErrorCode(body.code) ? body.code : 'HEARTH_ERR_INTERNAL'
  const error = new HearthError(code)
  if (typeof body.message === 'string') error.message = body.message
  return error
}
