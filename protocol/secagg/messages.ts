/**
 * Wire types of secure aggregation, without logic (in the manner of comlink's `protocol.ts`):
 * JSON control messages keyed on `type`, plus one binary frame, the masked input.
 *
 * One group of a round (Bonawitz et al. CCS 2017, Figure 4; SecAgg+ of Bell et al. CCS 2020
 * restricts every list to the client's neighbours in the communication graph):
 *
 * ```
 * client u                                          server
 *                                           ←  secagg/plan           {index, neighbours, t, …}
 * AdvertiseKeys
 *   secagg/advertise-keys {c_u^PK, s_u^PK}   →
 *                                           ←  secagg/keys           neighbours' keys (U1)
 * ShareKeys
 *   secagg/share-keys {e_{u,v} for v}        →
 *                                           ←  secagg/shares         e_{v,u} from neighbours in U2
 * MaskedInputCollection
 *   binary MaskedUpdate frame y_u            →   (running sum; the frame is then dropped)
 * ConsistencyCheck (optional)
 *                                           ←  secagg/consistency-request  U3
 *   secagg/consistency-signature σ_u         →
 * Unmasking
 *                                           ←  secagg/unmask-request  survivors / dropped (+ σ)
 *   secagg/unmask-shares                     →
 *                                           ←  secagg/result  or  secagg/abort
 * ```
 *
 * Every byte string inside JSON is standard padded base64 (RFC 4648 §4). The sender of a
 * client message is known to the transport (its session), never taken from the message. The
 * masked input travels as a `FrameKind.MaskedUpdate` frame of `protocol/frames.ts` whose id is
 * the round id and whose elements are y_u in Z_{2^b}.
 */
import type { ErrorCode } from '../errors.ts'
import type { PrgAlgorithm } from './prg.ts'

/** Version of this message set. */
export const SECAGG_PROTOCOL_VERSION = 1

/** Stages of a group, in order (ConsistencyCheck only when enabled). */
export const SecAggStage = {
  AdvertiseKeys: 'advertise-keys',
  ShareKeys: 'share-keys',
  MaskedInputCollection: 'masked-input-collection',
  ConsistencyCheck: 'consistency-check',
  Unmasking: 'unmasking',
} as const
export type SecAggStage = (typeof SecAggStage)[keyof typeof SecAggStage]

/** `type` of every control message. */
export const SecAggMessageType = {
  // server → client
  Plan: 'secagg/plan',
  Keys: 'secagg/keys',
  Shares: 'secagg/shares',
  ConsistencyRequest: 'secagg/consistency-request',
  UnmaskRequest: 'secagg/unmask-request',
  Result: 'secagg/result',
  Abort: 'secagg/abort',
  // client → server
  AdvertiseKeys: 'secagg/advertise-keys',
  ShareKeys: 'secagg/share-keys',
  ConsistencySignature: 'secagg/consistency-signature',
  UnmaskShares: 'secagg/unmask-shares',
} as const
export type SecAggMessageType = (typeof SecAggMessageType)[keyof typeof SecAggMessageType]

/** Fields every control message carries: replays across rounds and groups are rejected. */
interface Addressed {
  readonly roundId: number
  readonly groupId: number
}

// ---- server → client -----------------------------------------------------------------------

/** Starts a group for one client. Deadlines are epoch milliseconds. */
export interface PlanMessage extends Addressed {
  readonly type: typeof SecAggMessageType.Plan
  readonly protocol: number
  /** This client's index in the group, 1..groupSize: also its Shamir x-coordinate. */
  readonly index: number
  readonly groupSize: number
  /** Shamir threshold t; also the fewest clients the group may finish with. */
  readonly threshold: number
  /** This client's neighbours in the communication graph (everyone else for plain SecAgg). */
  readonly neighbours: readonly number[]
  /** m: elements of the input vector. */
  readonly vectorLength: number
  /** b: arithmetic is in Z_{2^b}. */
  readonly modulusBits: number
  /** Largest value an input element may take, so that the group sum cannot wrap. */
  readonly maxInputValue: number
  readonly prg: PrgAlgorithm
  readonly consistencyCheck: boolean
  /** Deadline of AdvertiseKeys. */
  readonly deadline: number
}

/** A client's public keys, as advertised and forwarded. */
export interface PublicKeys {
  readonly index: number
  /** c^PK: X25519 key for encrypting shares. */
  readonly encryptionKey: string
  /** s^PK: X25519 key for pairwise masks. */
  readonly maskingKey: string
  /** Ed25519 key for the consistency check, when enabled. */
  readonly signingKey?: string
}

/** End of AdvertiseKeys: the public keys of the client's neighbours in U1. */
export interface KeysMessage extends Addressed {
  readonly type: typeof SecAggMessageType.Keys
  readonly keys: readonly PublicKeys[]
  /** Deadline of ShareKeys. */
  readonly deadline: number
}

/** A ciphertext e_{from,to} holding from's shares for to (see `aead.ts`). */
export interface Envelope {
  readonly from: number
  readonly to: number
  readonly ciphertext: string
}

/** End of ShareKeys: the envelopes addressed to this client by its neighbours in U2. */
export interface SharesMessage extends Addressed {
  readonly type: typeof SecAggMessageType.Shares
  readonly envelopes: readonly Envelope[]
  /** Deadline of MaskedInputCollection. */
  readonly deadline: number
}

/** End of MaskedInputCollection with the consistency check: U3, to be signed. */
export interface ConsistencyRequestMessage extends Addressed {
  readonly type: typeof SecAggMessageType.ConsistencyRequest
  /** U3: every client of the group whose masked input was accepted, ascending. */
  readonly survivors: readonly number[]
  readonly deadline: number
}

/** A neighbour's signature over U3. */
export interface SurvivorsSignature {
  readonly index: number
  readonly signature: string
}

/** Asks for the shares that unmask the sum. */
export interface UnmaskRequestMessage extends Addressed {
  readonly type: typeof SecAggMessageType.UnmaskRequest
  /** Neighbours whose masked input is in the sum: reveal their self-mask shares. */
  readonly survivors: readonly number[]
  /** Neighbours that dropped after ShareKeys: reveal their masking-key shares. */
  readonly dropped: readonly number[]
  /** With the consistency check: neighbours' signatures over U3. */
  readonly signatures?: readonly SurvivorsSignature[]
  readonly deadline: number
}

/** The group finished; the server holds the sum of `survivors` inputs. */
export interface ResultMessage extends Addressed {
  readonly type: typeof SecAggMessageType.Result
  readonly survivors: number
}

/** The group (or this client's part in it) ended without a sum. */
export interface AbortMessage extends Addressed {
  readonly type: typeof SecAggMessageType.Abort
  readonly stage: SecAggStage
  readonly code: ErrorCode
  readonly reason: string
}

export type SecAggServerMessage =
  | PlanMessage
  | KeysMessage
  | SharesMessage
  | ConsistencyRequestMessage
  | UnmaskRequestMessage
  | ResultMessage
  | AbortMessage

// ---- client → server -----------------------------------------------------------------------

export interface AdvertiseKeysMessage extends Addressed {
  readonly type: typeof SecAggMessageType.AdvertiseKeys
  readonly encryptionKey: string
  readonly maskingKey: string
  readonly signingKey?: string
}

export interface ShareKeysMessage extends Addressed {
  readonly type: typeof SecAggMessageType.ShareKeys
  /** One envelope per neighbour whose keys the client received. */
  readonly envelopes: readonly Envelope[]
}

export interface ConsistencySignatureMessage extends Addressed {
  readonly type: typeof SecAggMessageType.ConsistencySignature
  readonly signature: string
}

/** A share revealed in Unmasking: `of` names the client the secret belongs to. */
export interface RevealedShare {
  readonly of: number
  readonly share: string
}

export interface UnmaskSharesMessage extends Addressed {
  readonly type: typeof SecAggMessageType.UnmaskShares
  /** Shares of b_v for v in the request's survivors, and of the client's own b. */
  readonly selfMaskShares: readonly RevealedShare[]
  /** Shares of s_v^SK for v in the request's dropped. */
  readonly keyShares: readonly RevealedShare[]
}

export type SecAggClientMessage =
  | AdvertiseKeysMessage
  | ShareKeysMessage
  | ConsistencySignatureMessage
  | UnmaskSharesMessage

/** What a client hands its transport: a control message or the masked-input frame. */
export type SecAggClientOutput =
  | { readonly kind: 'control'; readonly message: SecAggClientMessage }
  | { readonly kind: 'masked-input'; readonly frame: Uint8Array }

/** A message the server asks its transport to deliver to client `to`. */
export interface Outgoing {
  readonly to: number
  readonly message: SecAggServerMessage
}
