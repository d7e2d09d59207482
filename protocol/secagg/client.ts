/**
 * The client half of secure aggregation, as a state machine with one method per stage
 * (Bonawitz et al. CCS 2017, Figure 4 "User" side; SecAgg+ of Bell et al. CCS 2020 Algorithm 1
 * restricts every step to the client's neighbours). Transport-agnostic: methods take the parsed
 * JSON the server sent and return what to send back; the masked input is a binary frame.
 *
 * The one rule that protects a client whatever the server does: it answers a single unmasking
 * request, and in it never reveals both the share of a peer's self-mask seed and the share of
 * that peer's masking key (§4, round 4; a request naming a peer in both lists is refused).
 */
import { HearthError } from '../errors.ts'
import { encodeFrame, FrameKind } from '../frames.ts'
import { importShareKey, open, seal, sharesAad } from './aead.ts'
import { concatBytes, fromBase64, toBase64, u32le } from './bytes.ts'
import type { RoundContext } from './kdf.ts'
import { derivePairKey, deriveKey, KeyPurpose } from './kdf.ts'
import type { KeyPair, X25519Backend } from './keys.ts'
import { generateKeyPair, X25519_KEY_BYTES, X25519Agreement } from './keys.ts'
import type {
  AdvertiseKeysMessage,
  ConsistencySignatureMessage,
  PlanMessage,
  RevealedShare,
  SecAggClientOutput,
  ShareKeysMessage,
  UnmaskSharesMessage,
} from './messages.ts'
import { SECAGG_PROTOCOL_VERSION, SecAggMessageType } from './messages.ts'
import type { MaskJob } from './prg.ts'
import { applyMasks, PrgAlgorithm, SEED_BYTES } from './prg.ts'
import { SHARE_BYTES, splitSecret } from './shamir.ts'
import type { SigningKeyPair } from './signing.ts'
import { generateSigningKeyPair, SIGNATURE_BYTES, SIGNING_KEY_BYTES, signSurvivors, verifySurvivors } from './signing.ts'
import {
  arrayField,
  boolField,
  expectContext,
  expectDistinct,
  expectMessage,
  indexItem,
  intField,
  objectItem,
  stringField,
} from './validate.ts'
import type { WebCryptoKey } from './webcrypto.ts'
import { randomBytes } from './webcrypto.ts'

/** Where a client is in its group. */
export const ClientState = {
  Planned: 'planned',
  KeysAdvertised: 'keys-advertised',
  KeysShared: 'keys-shared',
  InputSent: 'input-sent',
  SurvivorsSigned: 'survivors-signed',
  Done: 'done',
  Aborted: 'aborted',
} as const
export type ClientState = (typeof ClientState)[keyof typeof ClientState]

const ORDER: readonly ClientState[] = [
  ClientState.Planned,
  ClientState.KeysAdvertised,
  ClientState.KeysShared,
  ClientState.InputSent,
  ClientState.SurvivorsSigned,
  ClientState.Done,
]

/** Options of a client. */
export interface SecAggClientOptions {
  /** X25519 implementation; 'auto' (default) prefers native WebCrypto. */
  readonly x25519?: X25519Backend | 'auto'
  /** Mask expansions in flight at once (default 4). */
  readonly concurrency?: number
}

// Envelope plaintext: from ‖ to ‖ share of s^SK ‖ share of b (Bonawitz et al. §4, round 1).
const ENVELOPE_PLAINTEXT_BYTES = 8 + 2 * SHARE_BYTES

interface PeerKeys {
  readonly encryptionKey: Uint8Array
  readonly maskingKey: Uint8Array
  readonly signingKey: Uint8Array | undefined
}

interface HeldShares {
  readonly keyShare: Uint8Array
  readonly selfMaskShare: Uint8Array
}

/** Validates a plan message from the server; throws `HEARTH_ERR_MALFORMED_MESSAGE`. */
export function parsePlan(value: unknown): PlanMessage {
  const m = expectMessage(value, SecAggMessageType.Plan)
  const protocol = intField(m, 'protocol', 0, 2 ** 31)
  if (protocol !== SECAGG_PROTOCOL_VERSION) {
    throw new HearthError('HEARTH_ERR_UNSUPPORTED_PROTOCOL', `secure aggregation protocol ${protocol}, this build speaks ${SECAGG_PROTOCOL_VERSION}`)
  }
  const groupSize = intField(m, 'groupSize', 2, 2 ** 24)
  const index = intField(m, 'index', 1, groupSize)
  const neighbours = arrayField(m, 'neighbours', indexItem(groupSize))
  expectDistinct(neighbours, 'neighbours')
  if (neighbours.includes(index)) throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', 'neighbours lists the client itself')
  const modulusBits = intField(m, 'modulusBits', 1, 32)
  const prg = stringField(m, 'prg')
  if (prg !== PrgAlgorithm.AesCtr && prg !== PrgAlgorithm.ChaCha20) throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', `unknown prg ${prg}`)
  return {
    type: SecAggMessageType.Plan,
    protocol,
    roundId: intField(m, 'roundId', 0, 0xffffffff),
    groupId: intField(m, 'groupId', 0, 0xffffffff),
    index,
    groupSize,
    threshold: intField(m, 'threshold', 1, neighbours.length + 1),
    neighbours,
    vectorLength: intField(m, 'vectorLength', 1, 2 ** 28),
    modulusBits,
    maxInputValue: intField(m, 'maxInputValue', 1, 2 ** modulusBits - 1),
    prg,
    consistencyCheck: boolField(m, 'consistencyCheck'),
    deadline: intField(m, 'deadline', 0, Number.MAX_SAFE_INTEGER),
  }
}

/**
 * One client's part in one group of a round. Create it from the server's plan, then call the
 * stage methods in order (or {@link SecAggClient.handle} for each server message).
 *
 * Errors: `HEARTH_ERR_SECAGG_REPLAY` for a message that was already handled or is out of order
 * (the client carries on); for anything else — tampering, a malformed or unsafe request, too few
 * peers — the client aborts, wipes its secrets and throws.
 */
export class SecAggClient {
  /** The validated plan. */
  readonly plan: PlanMessage
  readonly #context: RoundContext
  readonly #neighbours: ReadonlySet<number>
  readonly #options: SecAggClientOptions
  #state: ClientState = ClientState.Planned
  #encryption: KeyPair | undefined
  #masking: KeyPair | undefined
  #signing: SigningKeyPair | undefined
  #selfSeed: Uint8Array | undefined
  #ownSelfMaskShare: Uint8Array | undefined
  #peers = new Map<number, PeerKeys>()
  #pairKeys = new Map<number, WebCryptoKey>()
  #held = new Map<number, HeldShares>()
  #signedSurvivors: readonly number[] | undefined

  constructor(plan: unknown, options: SecAggClientOptions = {}) {
    this.plan = parsePlan(plan)
    this.#context = { roundId: this.plan.roundId, groupId: this.plan.groupId }
    this.#neighbours = new Set(this.plan.neighbours)
    this.#options = options
  }

  /** This client's index in the group (its Shamir x-coordinate). */
  get index(): number {
    return this.plan.index
  }

  get state(): ClientState {
    return this.#state
  }

  /** AdvertiseKeys (round 0): fresh key pairs; sends c^PK and s^PK (and the signing key). */
  async advertiseKeys(): Promise<AdvertiseKeysMessage> {
    return this.#step(ClientState.Planned, ClientState.KeysAdvertised, 'advertise-keys', async () => {
      const [encryption, masking] = await Promise.all([generateKeyPair(this.#options.x25519), generateKeyPair(this.#options.x25519)])
      this.#encryption = encryption
      this.#masking = masking
      if (this.plan.consistencyCheck) this.#signing = generateSigningKeyPair()
      return {
        type: SecAggMessageType.AdvertiseKeys,
        ...this.#context,
        encryptionKey: toBase64(encryption.publicKey),
        maskingKey: toBase64(masking.publicKey),
        ...(this.#signing === undefined ? {} : { signingKey: toBase64(this.#signing.publicKey) }),
      }
    })
  }

  /**
   * ShareKeys (round 1): checks the neighbours' keys, draws the self-mask seed b, shares b and
   * s^SK t-of-(neighbours + self) with Shamir, and encrypts each neighbour's shares for it.
   */
  async shareKeys(message: unknown): Promise<ShareKeysMessage> {
    const m = this.#accept(message, SecAggMessageType.Keys, ClientState.KeysAdvertised)
    return this.#step(ClientState.KeysAdvertised, ClientState.KeysShared, SecAggMessageType.Keys, async () => {
      const keys = arrayField(m, 'keys', objectItem)
      const seen = new Set<string>([toBase64((this.#encryption as KeyPair).publicKey), toBase64((this.#masking as KeyPair).publicKey)])
      for (const [i, k] of keys.entries()) {
        const index = intField(k, 'index', 1, this.plan.groupSize)
        if (!this.#neighbours.has(index)) throw malformed(`keys[${i}] is from client ${index}, not a neighbour`)
        if (this.#peers.has(index)) throw malformed(`keys lists client ${index} twice`)
        const enc = stringField(k, 'encryptionKey')
        const mask = stringField(k, 'maskingKey')
        // Bonawitz et al. §4 round 1: all advertised public keys must be different.
        for (const key of [enc, mask]) {
          if (seen.has(key)) throw new HearthError('HEARTH_ERR_SECAGG_TAMPERED', `client ${index} advertised a public key seen before`)
          seen.add(key)
        }
        this.#peers.set(index, {
          encryptionKey: fromBase64(enc, `keys[${i}].encryptionKey`, X25519_KEY_BYTES),
          maskingKey: fromBase64(mask, `keys[${i}].maskingKey`, X25519_KEY_BYTES),
          signingKey: this.plan.consistencyCheck ? fromBase64(stringField(k, 'signingKey'), `keys[${i}].signingKey`, SIGNING_KEY_BYTES) : undefined,
        })
      }
      this.#requireThreshold(this.#peers.size + 1, 'neighbours advertised keys')
      const selfSeed = randomBytes(SEED_BYTES)
      this.#selfSeed = selfSeed
      const holders = [this.index, ...this.#peers.keys()]
      const keyShares = splitSecret((this.#masking as KeyPair).secretKey, this.plan.threshold, holders)
      const seedShares = splitSecret(selfSeed, this.plan.threshold, holders)
      this.#ownSelfMaskShare = (seedShares[0] as { share: Uint8Array }).share
      const encryption = this.#encryption as KeyPair
      const agreement = await X25519Agreement.create(encryption.secretKey, this.#options.x25519, encryption.webKey)
      const envelopes = await Promise.all(
        holders.slice(1).map(async (v, i) => {
          const shared = await agreement.agree((this.#peers.get(v) as PeerKeys).encryptionKey)
          const raw = derivePairKey(shared, KeyPurpose.ShareEncryption, this.#context, this.index, v)
          const key = await importShareKey(raw)
          raw.fill(0)
          this.#pairKeys.set(v, key)
          const plaintext = concatBytes(u32le(this.index, v), (keyShares[i + 1] as { share: Uint8Array }).share, (seedShares[i + 1] as { share: Uint8Array }).share)
          const sealed = await seal(key, sharesAad(this.#context, this.index, v), plaintext)
          return { from: this.index, to: v, ciphertext: toBase64(sealed) }
        }),
      )
      return { type: SecAggMessageType.ShareKeys, ...this.#context, envelopes }
    })
  }

  /**
   * MaskedInputCollection (round 2): opens the neighbours' envelopes, then masks the input:
   * y = x + PRG(b) + Σ_v Δ_{u,v}·PRG(s_{u,v}) mod 2^b, with Δ_{u,v} = +1 when u > v and −1 when
   * u < v (§4 round 2), over the neighbours v whose envelopes arrived (U2). Returns the
   * `FrameKind.MaskedUpdate` frame to upload.
   */
  async maskInput(message: unknown, input: Uint32Array): Promise<Uint8Array> {
    const m = this.#accept(message, SecAggMessageType.Shares, ClientState.KeysShared)
    return this.#step(ClientState.KeysShared, ClientState.InputSent, SecAggMessageType.Shares, async () => {
      this.#checkInput(input)
      const envelopes = arrayField(m, 'envelopes', objectItem)
      await Promise.all(
        envelopes.map(async (e, i) => {
          const from = intField(e, 'from', 1, this.plan.groupSize)
          if (intField(e, 'to', 1, this.plan.groupSize) !== this.index) throw malformed(`envelopes[${i}] is addressed to another client`)
          const key = this.#pairKeys.get(from)
          if (key === undefined) throw malformed(`envelopes[${i}] is from client ${from}, whose keys this client never received`)
          if (this.#held.has(from)) throw malformed(`envelopes lists client ${from} twice`)
          const sealed = fromBase64(stringField(e, 'ciphertext'), `envelopes[${i}].ciphertext`)
          const plaintext = await open(key, sharesAad(this.#context, from, this.index), sealed, `envelope from client ${from}`)
          const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength)
          if (plaintext.length !== ENVELOPE_PLAINTEXT_BYTES || view.getUint32(0, true) !== from || view.getUint32(4, true) !== this.index) {
            throw new HearthError('HEARTH_ERR_SECAGG_TAMPERED', `envelope from client ${from} does not name the pair it was sealed for`)
          }
          this.#held.set(from, {
            keyShare: plaintext.slice(8, 8 + SHARE_BYTES),
            selfMaskShare: plaintext.slice(8 + SHARE_BYTES),
          })
        }),
      )
      this.#requireThreshold(this.#held.size + 1, 'neighbours shared keys')
      const masked = Uint32Array.from(input)
      await applyMasks(masked, this.#maskJobs(), this.plan.prg, this.#options.concurrency)
      if (this.plan.modulusBits < 32) {
        const mod = 2 ** this.plan.modulusBits - 1
        for (let i = 0; i < masked.length; i++) masked[i] = (masked[i] as number) & mod
      }
      // Only the shares received and the own share of b are needed from here on.
      this.#wipeKeys()
      return encodeFrame({ kind: FrameKind.MaskedUpdate, id: this.plan.roundId, values: masked })
    })
  }

  /** ConsistencyCheck (round 3, optional): signs the survivors list U3 it was shown. */
  signSurvivors(message: unknown): ConsistencySignatureMessage {
    const m = this.#accept(message, SecAggMessageType.ConsistencyRequest, ClientState.InputSent)
    return this.#stepSync(ClientState.InputSent, ClientState.SurvivorsSigned, () => {
      if (!this.plan.consistencyCheck || this.#signing === undefined) throw malformed('this group has no consistency check')
      const survivors = arrayField(m, 'survivors', indexItem(this.plan.groupSize))
      expectDistinct(survivors, 'survivors')
      if (!survivors.includes(this.index)) throw malformed('survivors does not include this client')
      this.#requireThreshold(survivors.length, 'clients survived')
      this.#signedSurvivors = [...survivors].sort((a, b) => a - b)
      const signature = signSurvivors(this.#signing.secretKey, this.#context, this.#signedSurvivors)
      return { type: SecAggMessageType.ConsistencySignature, ...this.#context, signature: toBase64(signature) }
    })
  }

  /**
   * Unmasking (round 4): reveals the shares of b_v for surviving neighbours (and its own), and
   * the shares of s_v^SK for neighbours that dropped. Refuses (`HEARTH_ERR_SECAGG_UNSAFE_REQUEST`)
   * a request that names a peer as both, or that contradicts the signed survivors list; answers
   * only once.
   */
  unmask(message: unknown): UnmaskSharesMessage {
    const from = this.plan.consistencyCheck ? ClientState.SurvivorsSigned : ClientState.InputSent
    const m = this.#accept(message, SecAggMessageType.UnmaskRequest, from)
    return this.#stepSync(from, ClientState.Done, () => {
      const survivors = arrayField(m, 'survivors', indexItem(this.plan.groupSize))
      const dropped = arrayField(m, 'dropped', indexItem(this.plan.groupSize))
      expectDistinct(survivors, 'survivors')
      expectDistinct(dropped, 'dropped')
      const survivorSet = new Set(survivors)
      for (const v of dropped) {
        if (survivorSet.has(v)) throw unsafe(`client ${v} is named both surviving and dropped`)
      }
      if (dropped.includes(this.index)) throw unsafe('the request names this client as dropped')
      for (const v of [...survivors, ...dropped]) {
        if (!this.#held.has(v)) throw malformed(`the request names client ${v}, whose shares this client does not hold`)
      }
      if (this.plan.consistencyCheck) this.#checkConsistency(m, survivorSet, dropped)
      // §4 round 4: abort when fewer than t clients survived (neighbours plus itself here).
      this.#requireThreshold(survivors.length + 1, 'clients survived')
      const selfMaskShares: RevealedShare[] = [{ of: this.index, share: toBase64(this.#ownSelfMaskShare as Uint8Array) }]
      for (const v of survivors) selfMaskShares.push({ of: v, share: toBase64((this.#held.get(v) as HeldShares).selfMaskShare) })
      const keyShares: RevealedShare[] = dropped.map((v) => ({ of: v, share: toBase64((this.#held.get(v) as HeldShares).keyShare) }))
      this.#wipeAll()
      return { type: SecAggMessageType.UnmaskShares, ...this.#context, selfMaskShares, keyShares }
    })
  }

  /**
   * Dispatches any server message to its stage method. `input` supplies the quantized update
   * when the masked-input stage begins. Returns what to send, or `undefined` for `result` and
   * `abort` (after which the client is finished).
   */
  async handle(message: unknown, input?: () => Uint32Array | Promise<Uint32Array>): Promise<SecAggClientOutput | undefined> {
    const type = typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined
    switch (type) {
      case SecAggMessageType.Keys:
        return { kind: 'control', message: await this.shareKeys(message) }
      case SecAggMessageType.Shares: {
        if (input === undefined) throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', 'the masked-input stage needs the input vector')
        return { kind: 'masked-input', frame: await this.maskInput(message, await input()) }
      }
      case SecAggMessageType.ConsistencyRequest:
        return { kind: 'control', message: this.signSurvivors(message) }
      case SecAggMessageType.UnmaskRequest:
        return { kind: 'control', message: this.unmask(message) }
      case SecAggMessageType.Result:
        this.#accept(message, SecAggMessageType.Result, undefined)
        this.#state = ClientState.Done
        this.#wipeAll()
        return undefined
      case SecAggMessageType.Abort: {
        // An abort is final and idempotent: a client that already left ignores it.
        const m = expectMessage(message, SecAggMessageType.Abort)
        expectContext(m, this.#context)
        this.#abort()
        return undefined
      }
      default:
        throw malformed(`unexpected message type ${String(type)}`)
    }
  }

  /** Stops taking part and wipes every secret (e.g. on the stage deadline or a lost socket). */
  abort(): void {
    this.#abort()
  }

  // ---- internals ---------------------------------------------------------------------------

  #accept(message: unknown, type: string, expected: ClientState | undefined): Record<string, unknown> {
    const m = expectMessage(message, type)
    expectContext(m, this.#context)
    if (this.#state === ClientState.Aborted) throw new HearthError('HEARTH_ERR_ROUND_ABORTED', `client ${this.index} has left the group`)
    if (expected !== undefined && this.#state !== expected) {
      const late = ORDER.indexOf(this.#state) > ORDER.indexOf(expected)
      throw new HearthError('HEARTH_ERR_SECAGG_REPLAY', `${type} ${late ? 'was already handled' : 'arrived out of order'} (client state ${this.#state})`)
    }
    return m
  }

  async #step<T>(from: ClientState, to: ClientState, what: string, body: () => Promise<T>): Promise<T> {
    if (this.#state !== from) throw new HearthError('HEARTH_ERR_SECAGG_REPLAY', `${what}: client state is ${this.#state}, expected ${from}`)
    this.#state = to // claim the step first, so a concurrent duplicate call is refused
    try {
      return await body()
    } catch (error) {
      this.#abort()
      throw error
    }
  }

  #stepSync<T>(from: ClientState, to: ClientState, body: () => T): T {
    if (this.#state !== from) throw new HearthError('HEARTH_ERR_SECAGG_REPLAY', `client state is ${this.#state}, expected ${from}`)
    this.#state = to
    try {
      return body()
    } catch (error) {
      this.#abort()
      throw error
    }
  }

  #requireThreshold(count: number, what: string): void {
    if (count < this.plan.threshold) {
      throw new HearthError('HEARTH_ERR_SECAGG_THRESHOLD', `only ${count} ${what} (with this client); threshold is ${this.plan.threshold}`)
    }
  }

  #checkInput(input: Uint32Array): void {
    if (!(input instanceof Uint32Array)) throw new TypeError('input must be a Uint32Array of quantized values')
    if (input.length !== this.plan.vectorLength) {
      throw new HearthError('HEARTH_ERR_VECTOR_LENGTH', `input has ${input.length} elements, the plan says ${this.plan.vectorLength}`)
    }
    const max = this.plan.maxInputValue
    for (let i = 0; i < input.length; i++) {
      if ((input[i] as number) > max) throw new HearthError('HEARTH_ERR_VECTOR_VALUE', `input element ${i} is above ${max}: the group sum could wrap`)
    }
  }

  async *#maskJobs(): AsyncGenerator<MaskJob> {
    // Self mask p_u = PRG(b_u), seeded through HKDF for domain separation (kdf.ts).
    yield { seed: deriveKey(this.#selfSeed as Uint8Array, KeyPurpose.SelfMask, this.#context, [this.index]), sign: 1 }
    const masking = this.#masking as KeyPair
    const agreement = await X25519Agreement.create(masking.secretKey, this.#options.x25519, masking.webKey)
    const peers = [...this.#held.keys()].sort((a, b) => a - b)
    // Agree with every peer up front (WebCrypto runs these off-thread), then expand in order.
    const shared = await Promise.all(peers.map((v) => agreement.agree((this.#peers.get(v) as PeerKeys).maskingKey)))
    for (const [i, v] of peers.entries()) {
      const seed = derivePairKey(shared[i] as Uint8Array, KeyPurpose.PairwiseMask, this.#context, this.index, v)
      yield { seed, sign: this.index > v ? 1 : -1 }
    }
  }

  #checkConsistency(m: Record<string, unknown>, survivors: ReadonlySet<number>, dropped: readonly number[]): void {
    const signed = this.#signedSurvivors as readonly number[]
    const signedSet = new Set(signed)
    // The request must agree with the signed U3: survivors = U3 ∩ held peers, dropped ∩ U3 = ∅.
    for (const v of this.#held.keys()) {
      if (signedSet.has(v) !== survivors.has(v)) throw unsafe(`client ${v} is treated differently from the signed survivors list`)
    }
    for (const v of dropped) if (signedSet.has(v)) throw unsafe(`client ${v} is in the signed survivors list but named as dropped`)
    const signatures = arrayField(m, 'signatures', objectItem)
    const valid = new Set<number>([this.index])
    for (const [i, s] of signatures.entries()) {
      const index = intField(s, 'index', 1, this.plan.groupSize)
      const peer = this.#peers.get(index)
      if (peer?.signingKey === undefined) throw malformed(`signatures[${i}] is from client ${index}, whose signing key this client never received`)
      const signature = fromBase64(stringField(s, 'signature'), `signatures[${i}].signature`, SIGNATURE_BYTES)
      if (!verifySurvivors(peer.signingKey, signature, this.#context, signed)) {
        throw new HearthError('HEARTH_ERR_SECAGG_TAMPERED', `client ${index}'s signature does not cover the survivors list this client signed`)
      }
      valid.add(index)
    }
    this.#requireThreshold(valid.size, 'clients signed the survivors list')
  }

  #wipeKeys(): void {
    this.#encryption?.secretKey.fill(0)
    this.#masking?.secretKey.fill(0)
    this.#selfSeed?.fill(0)
    this.#pairKeys.clear()
    this.#selfSeed = undefined
  }

  #wipeAll(): void {
    this.#wipeKeys()
    this.#signing?.secretKey.fill(0)
    this.#ownSelfMaskShare?.fill(0)
    for (const h of this.#held.values()) {
      h.keyShare.fill(0)
      h.selfMaskShare.fill(0)
    }
    this.#held.clear()
  }

  #abort(): void {
    this.#state = ClientState.Aborted
    this.#wipeAll()
  }
}

function malformed(detail: string): HearthError {
  return new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', detail)
}

function unsafe(detail: string): HearthError {
  return new HearthError('HEARTH_ERR_SECAGG_UNSAFE_REQUEST', detail)
}
