/**
 * The server half of secure aggregation for one group, as a state machine (Bonawitz et al. CCS
 * 2017, Figure 4 "Server" side; SecAgg+ of Bell et al. CCS 2020 Algorithm 1). Transport-
 * agnostic: the round engine delivers each client's messages with {@link SecAggServer.receive}
 * and {@link SecAggServer.receiveMaskedInput}, calls {@link SecAggServer.advance} when a stage's
 * deadline passes (or every client has answered), and sends the returned messages.
 *
 * Streaming and private by construction: masked inputs are added into one running sum in
 * Z_{2^32} as they arrive and then dropped; unmasking subtracts the reconstructed masks from
 * that sum. No individual update, masked or not, is kept, and nothing here needs to be written
 * to disk. Below the threshold the group aborts with `HEARTH_ERR_SECAGG_THRESHOLD` and a reason.
 */
import { HearthError } from '../errors.ts'
import { decodeFrame, FrameKind } from '../frames.ts'
import { GCM_IV_BYTES, GCM_TAG_BYTES } from './aead.ts'
import { bytesEqual, fromBase64 } from './bytes.ts'
import type { CommunicationGraph } from './graph.ts'
import { buildGraph } from './graph.ts'
import type { RoundContext } from './kdf.ts'
import { derivePairKey, deriveKey, KeyPurpose } from './kdf.ts'
import type { X25519Backend } from './keys.ts'
import { publicKeyOf, X25519_KEY_BYTES, X25519Agreement } from './keys.ts'
import type { Envelope, Outgoing, PublicKeys, SecAggServerMessage, SurvivorsSignature } from './messages.ts'
import { SECAGG_PROTOCOL_VERSION, SecAggMessageType, SecAggStage } from './messages.ts'
import type { SecAggParameters } from './params.ts'
import type { MaskJob } from './prg.ts'
import { applyMasks, PrgAlgorithm } from './prg.ts'
import type { Share } from './shamir.ts'
import { SHARE_BYTES, ShamirReconstructor } from './shamir.ts'
import { SIGNATURE_BYTES, SIGNING_KEY_BYTES } from './signing.ts'
import { arrayField, expectContext, expectDistinct, expectMessage, indexItem, objectItem, stringField } from './validate.ts'

/** Where the server is: a protocol stage, or finished. */
export const ServerState = { ...SecAggStage, Completed: 'completed', Aborted: 'aborted' } as const
export type ServerState = (typeof ServerState)[keyof typeof ServerState]

/** Default stage timeouts in milliseconds. */
export const DEFAULT_STAGE_TIMEOUTS_MS: Readonly<Record<SecAggStage, number>> = {
  [SecAggStage.AdvertiseKeys]: 30_000,
  [SecAggStage.ShareKeys]: 30_000,
  [SecAggStage.MaskedInputCollection]: 120_000,
  [SecAggStage.ConsistencyCheck]: 30_000,
  [SecAggStage.Unmasking]: 30_000,
}

/** Configuration of one group. */
export interface SecAggServerConfig {
  readonly roundId: number
  readonly groupId: number
  /** Derived with `deriveParameters` (never hand-set). */
  readonly parameters: SecAggParameters
  /** m: elements per input vector. */
  readonly vectorLength: number
  /** b: arithmetic in Z_{2^b}, 1..32. */
  readonly modulusBits: number
  /** Largest input element (from `quantizationLevels`), so the sum of the group cannot wrap. */
  readonly maxInputValue: number
  /**
   * The inputs are residues whose sum the caller keeps in range (distributed DP: signed values
   * with noise, `protocol/dp/distributed-encoding.ts`), so `maxInputValue` may be 2^b − 1.
   * Default false.
   */
  readonly modularInputs?: boolean
  /** Default `aes-256-ctr`. */
  readonly prg?: PrgAlgorithm
  /** Run the ConsistencyCheck stage (default false). */
  readonly consistencyCheck?: boolean
  readonly stageTimeoutsMs?: Partial<Record<SecAggStage, number>>
  /** The communication graph; by default built from `parameters` with the CSPRNG. */
  readonly graph?: CommunicationGraph
  /** X25519 implementation for unmasking (default 'auto'). */
  readonly x25519?: X25519Backend | 'auto'
  /** Mask expansions in flight while unmasking (default 4). */
  readonly concurrency?: number
}

/** How many clients were still in after each stage. */
export interface StageCounts {
  readonly planned: number
  readonly advertised?: number
  readonly shared?: number
  readonly masked?: number
  readonly signed?: number
  readonly unmasked?: number
}

/** The outcome of a completed group. */
export interface SecAggResult {
  /** Σ x_u over the survivors, in Z_{2^b}; equal to the integer sum since it cannot wrap. */
  readonly sum: Uint32Array
  /** U3: the clients whose inputs are in the sum, ascending. */
  readonly survivors: readonly number[]
  readonly counts: StageCounts
}

interface AdvertisedKeys {
  readonly wire: PublicKeys
  readonly maskingKey: Uint8Array
}

interface Request {
  readonly survivors: ReadonlySet<number>
  readonly dropped: ReadonlySet<number>
}

const ENVELOPE_BYTES = GCM_IV_BYTES + 8 + 2 * SHARE_BYTES + GCM_TAG_BYTES

/**
 * One group of a secure-aggregation round, server side. Clients are indexed 1..n; the engine
 * maps its sessions to indices and passes the index as `from`.
 */
export class SecAggServer {
  readonly config: SecAggServerConfig
  readonly graph: CommunicationGraph
  readonly #context: RoundContext
  readonly #n: number
  readonly #t: number
  readonly #prg: PrgAlgorithm
  readonly #timeouts: Readonly<Record<SecAggStage, number>>
  #state: ServerState = ServerState.AdvertiseKeys
  #started = false
  #deadline = 0
  #error: HearthError | undefined
  #counts: StageCounts
  // Stage memberships (U1 ⊇ U2 ⊇ U3 ⊇ U4 ⊇ U5 of the paper).
  #u1 = new Set<number>()
  #u2 = new Set<number>()
  #u3 = new Set<number>()
  #u4 = new Set<number>()
  #u5 = new Set<number>()
  #gone = new Set<number>()
  #keys = new Map<number, AdvertisedKeys>()
  #keysSentTo = new Map<number, readonly number[]>()
  #inbox = new Map<number, Envelope[]>()
  #sum: Uint32Array | undefined
  #signatures = new Map<number, string>()
  #requests = new Map<number, Request>()
  #selfMaskShares = new Map<number, Share[]>()
  #keyShares = new Map<number, Share[]>()
  #result: SecAggResult | undefined

  constructor(config: SecAggServerConfig) {
    const p = config.parameters
    if (!Number.isInteger(config.vectorLength) || config.vectorLength < 1) throw new RangeError(`vectorLength must be a positive integer, got ${config.vectorLength}`)
    if (!Number.isInteger(config.modulusBits) || config.modulusBits < 1 || config.modulusBits > 32) {
      throw new RangeError(`modulusBits must be an integer in [1, 32], got ${config.modulusBits}`)
    }
    const maxSum = config.modularInputs === true ? config.maxInputValue : config.maxInputValue * p.groupSize
    if (!Number.isInteger(config.maxInputValue) || config.maxInputValue < 1 || maxSum > 2 ** config.modulusBits - 1) {
      throw new RangeError(`maxInputValue ${config.maxInputValue} lets the sum of ${p.groupSize} clients wrap modulo 2^${config.modulusBits}`)
    }
    this.config = config
    this.graph = config.graph ?? buildGraph(p.groupSize, p.degree)
    if (this.graph.size !== p.groupSize) throw new RangeError(`graph has ${this.graph.size} clients, parameters say ${p.groupSize}`)
    this.#context = { roundId: config.roundId, groupId: config.groupId }
    this.#n = p.groupSize
    this.#t = p.threshold
    this.#prg = config.prg ?? PrgAlgorithm.AesCtr
    this.#timeouts = { ...DEFAULT_STAGE_TIMEOUTS_MS, ...config.stageTimeoutsMs }
    this.#counts = { planned: this.#n }
  }

  get state(): ServerState {
    return this.#state
  }

  /** Deadline of the current stage, epoch milliseconds. */
  get deadline(): number {
    return this.#deadline
  }

  /** Why the group aborted, once it has. */
  get error(): HearthError | undefined {
    return this.#error
  }

  get counts(): StageCounts {
    return this.#counts
  }

  /**
   * True when every client still expected in this stage has answered or is known to be gone
   * ({@link disconnected}): advance early.
   */
  get stageComplete(): boolean {
    switch (this.#state) {
      case ServerState.AdvertiseKeys:
        return this.#u1.size + this.#goneBefore(this.#u1) === this.#n
      case ServerState.ShareKeys:
        return this.#answeredOrGone(this.#u1, this.#u2)
      case ServerState.MaskedInputCollection:
        return this.#answeredOrGone(this.#u2, this.#u3)
      case ServerState.ConsistencyCheck:
        return this.#answeredOrGone(this.#u3, this.#u4)
      case ServerState.Unmasking:
        return this.#answeredOrGone(this.#requests.keys(), this.#u5)
      default:
        return true
    }
  }

  /**
   * The transport lost client `from` (its socket closed): it will answer nothing more, so no
   * stage waits for it until the deadline. It is handled as any client that stops answering.
   */
  disconnected(from: number): void {
    if (Number.isInteger(from) && from >= 1 && from <= this.#n) this.#gone.add(from)
  }

  /** The result, once completed. */
  result(): SecAggResult {
    if (this.#result === undefined) throw new HearthError('HEARTH_ERR_ROUND_FAILED', this.#error?.message ?? `the group is in stage ${this.#state}`)
    return this.#result
  }

  /** Starts AdvertiseKeys: one plan message per client. */
  start(now: number): Outgoing[] {
    if (this.#started) throw new HearthError('HEARTH_ERR_SECAGG_REPLAY', 'the group has already started')
    this.#started = true
    this.#deadline = now + this.#timeouts[SecAggStage.AdvertiseKeys]
    const out: Outgoing[] = []
    for (let index = 1; index <= this.#n; index++) {
      out.push({
        to: index,
        message: {
          type: SecAggMessageType.Plan,
          protocol: SECAGG_PROTOCOL_VERSION,
          ...this.#context,
          index,
          groupSize: this.#n,
          threshold: this.#t,
          neighbours: this.graph.neighbours(index),
          vectorLength: this.config.vectorLength,
          modulusBits: this.config.modulusBits,
          maxInputValue: this.config.maxInputValue,
          prg: this.#prg,
          consistencyCheck: this.config.consistencyCheck === true,
          deadline: this.#deadline,
        },
      })
    }
    return out
  }

  /**
   * Accepts a control message from client `from`. Throws a `HearthError` (and changes nothing)
   * for a malformed message, a message for another round or stage, a late or repeated one.
   */
  receive(from: number, message: unknown, now: number): void {
    const type = typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined
    switch (type) {
      case SecAggMessageType.AdvertiseKeys:
        return this.#receiveKeys(from, this.#admit(from, message, SecAggStage.AdvertiseKeys, now))
      case SecAggMessageType.ShareKeys:
        return this.#receiveEnvelopes(from, this.#admit(from, message, SecAggStage.ShareKeys, now))
      case SecAggMessageType.ConsistencySignature:
        return this.#receiveSignature(from, this.#admit(from, message, SecAggStage.ConsistencyCheck, now))
      case SecAggMessageType.UnmaskShares:
        return this.#receiveShares(from, this.#admit(from, message, SecAggStage.Unmasking, now))
      default:
        throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', `unexpected message type ${String(type)}`)
    }
  }

  /**
   * Accepts client `from`'s masked input (a `FrameKind.MaskedUpdate` frame) and adds it into the
   * running sum; the frame is not kept.
   */
  receiveMaskedInput(from: number, frame: Uint8Array, now: number): void {
    this.#checkStage(from, SecAggStage.MaskedInputCollection, now)
    if (!this.#u2.has(from)) throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `client ${from} is no longer in the group`)
    if (this.#u3.has(from)) throw new HearthError('HEARTH_ERR_DUPLICATE_UPLOAD', `client ${from} already sent its masked input`)
    const decoded = decodeFrame(frame)
    if (decoded.kind !== FrameKind.MaskedUpdate) throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', 'expected a masked-update frame')
    if (decoded.id !== this.config.roundId) throw new HearthError('HEARTH_ERR_SECAGG_REPLAY', `masked input for round ${decoded.id}`)
    const y = decoded.values
    if (y.length !== this.config.vectorLength) {
      throw new HearthError('HEARTH_ERR_VECTOR_LENGTH', `masked input has ${y.length} elements, expected ${this.config.vectorLength}`)
    }
    if (this.config.modulusBits < 32) {
      const limit = 2 ** this.config.modulusBits
      for (let i = 0; i < y.length; i++) {
        if ((y[i] as number) >= limit) throw new HearthError('HEARTH_ERR_VECTOR_VALUE', `element ${i} is outside Z_2^${this.config.modulusBits}`)
      }
    }
    const sum = this.#sum as Uint32Array
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (y[i] as number)
    this.#u3.add(from)
  }

  /**
   * Closes the current stage and opens the next; returns the messages to send. Call it when
   * the stage deadline passes or {@link stageComplete} is true. Unmasking's close is where the
   * masks are removed, so it is the one slow step.
   */
  async advance(now: number): Promise<Outgoing[]> {
    if (!this.#started) throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', 'start() the group first')
    try {
      switch (this.#state) {
        case ServerState.AdvertiseKeys:
          return this.#closeAdvertiseKeys(now)
        case ServerState.ShareKeys:
          return this.#closeShareKeys(now)
        case ServerState.MaskedInputCollection:
          return this.#closeMaskedInput(now)
        case ServerState.ConsistencyCheck:
          return this.#closeConsistencyCheck(now)
        case ServerState.Unmasking:
          return await this.#closeUnmasking()
        default:
          throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `the group has ${this.#state}`)
      }
    } catch (error) {
      if (error instanceof HearthError && this.#state !== ServerState.Completed && this.#state !== ServerState.Aborted) {
        return this.#abort(error)
      }
      throw error
    }
  }

  #answeredOrGone(expected: Iterable<number>, answered: ReadonlySet<number>): boolean {
    for (const u of expected) if (!answered.has(u) && !this.#gone.has(u)) return false
    return true
  }

  #goneBefore(answered: ReadonlySet<number>): number {
    let count = 0
    for (const u of this.#gone) if (!answered.has(u)) count++
    return count
  }

  // ---- receiving ---------------------------------------------------------------------------

  #checkStage(from: number, stage: SecAggStage, now: number): void {
    if (!Number.isInteger(from) || from < 1 || from > this.#n) throw new HearthError('HEARTH_ERR_NOT_SELECTED', `no client ${from} in this group`)
    if (this.#state === ServerState.Completed || this.#state === ServerState.Aborted) {
      throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `the group has ${this.#state}`)
    }
    if (this.#state !== stage) {
      const order = Object.values(SecAggStage) as string[]
      if (order.indexOf(stage) < order.indexOf(this.#state)) throw new HearthError('HEARTH_ERR_LATE_UPLOAD', `${stage} has closed`)
      throw new HearthError('HEARTH_ERR_SECAGG_REPLAY', `${stage} is not open (stage ${this.#state})`)
    }
    if (now > this.#deadline) throw new HearthError('HEARTH_ERR_LATE_UPLOAD', `${stage} deadline passed`)
  }

  #admit(from: number, message: unknown, stage: SecAggStage, now: number): Record<string, unknown> {
    // A second answer is a replay, even when the first one closed the stage.
    if (this.#membership(stage)[1].has(from)) throw new HearthError('HEARTH_ERR_SECAGG_REPLAY', `client ${from} already answered ${stage}`)
    this.#checkStage(from, stage, now)
    const expected = {
      [SecAggStage.AdvertiseKeys]: SecAggMessageType.AdvertiseKeys,
      [SecAggStage.ShareKeys]: SecAggMessageType.ShareKeys,
      [SecAggStage.MaskedInputCollection]: '',
      [SecAggStage.ConsistencyCheck]: SecAggMessageType.ConsistencySignature,
      [SecAggStage.Unmasking]: SecAggMessageType.UnmaskShares,
    }[stage]
    const m = expectMessage(message, expected)
    expectContext(m, this.#context)
    const [members] = this.#membership(stage)
    if (members !== undefined && !members.has(from)) throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `client ${from} is no longer in the group`)
    return m
  }

  /** Who may answer `stage`, and who already has. */
  #membership(stage: SecAggStage): [ReadonlySet<number> | undefined, ReadonlySet<number>] {
    switch (stage) {
      case SecAggStage.AdvertiseKeys:
        return [undefined, this.#u1]
      case SecAggStage.ShareKeys:
        return [this.#u1, this.#u2]
      case SecAggStage.MaskedInputCollection:
        return [this.#u2, this.#u3]
      case SecAggStage.ConsistencyCheck:
        return [this.#u3, this.#u4]
      case SecAggStage.Unmasking:
        return [new Set(this.#requests.keys()), this.#u5]
    }
  }

  #receiveKeys(from: number, m: Record<string, unknown>): void {
    const encryptionKey = stringField(m, 'encryptionKey')
    const maskingKey = stringField(m, 'maskingKey')
    fromBase64(encryptionKey, 'encryptionKey', X25519_KEY_BYTES)
    const masking = fromBase64(maskingKey, 'maskingKey', X25519_KEY_BYTES)
    let signingKey: string | undefined
    if (this.config.consistencyCheck === true) {
      signingKey = stringField(m, 'signingKey')
      fromBase64(signingKey, 'signingKey', SIGNING_KEY_BYTES)
    }
    const wire: PublicKeys = { index: from, encryptionKey, maskingKey, ...(signingKey === undefined ? {} : { signingKey }) }
    this.#keys.set(from, { wire, maskingKey: masking })
    this.#u1.add(from)
  }

  #receiveEnvelopes(from: number, m: Record<string, unknown>): void {
    const envelopes = arrayField(m, 'envelopes', objectItem)
    const expected = this.#keysSentTo.get(from) ?? []
    const parsed: Envelope[] = envelopes.map((e, i) => {
      const to = indexItem(this.#n)(e.to, `envelopes[${i}].to`)
      if (e.from !== from) throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', `envelopes[${i}].from is not the sender`)
      const ciphertext = stringField(e, 'ciphertext')
      fromBase64(ciphertext, `envelopes[${i}].ciphertext`, ENVELOPE_BYTES)
      return { from, to, ciphertext }
    })
    const recipients = parsed.map((e) => e.to)
    expectDistinct(recipients, 'envelopes')
    // One envelope for exactly each neighbour whose keys the server forwarded to the sender.
    if (recipients.length !== expected.length || !recipients.every((v) => expected.includes(v))) {
      throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', 'envelopes must address exactly the neighbours whose keys were sent')
    }
    for (const e of parsed) {
      let box = this.#inbox.get(e.to)
      if (box === undefined) this.#inbox.set(e.to, (box = []))
      box.push(e)
    }
    this.#u2.add(from)
  }

  #receiveSignature(from: number, m: Record<string, unknown>): void {
    const signature = stringField(m, 'signature')
    fromBase64(signature, 'signature', SIGNATURE_BYTES)
    this.#signatures.set(from, signature)
    this.#u4.add(from)
  }

  #receiveShares(from: number, m: Record<string, unknown>): void {
    const request = this.#requests.get(from) as Request
    const parse = (field: string, allowed: (v: number) => boolean, expectedCount: number): Share[] => {
      const items = arrayField(m, field, objectItem)
      const ofs = items.map((s, i) => indexItem(this.#n)(s.of, `${field}[${i}].of`))
      expectDistinct(ofs, field)
      if (ofs.length !== expectedCount || !ofs.every(allowed)) {
        throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', `${field} must hold exactly the shares requested`)
      }
      return items.map((s, i) => ({ x: ofs[i] as number, share: fromBase64(stringField(s, 'share'), `${field}[${i}].share`, SHARE_BYTES) }))
    }
    const self = parse('selfMaskShares', (v) => v === from || request.survivors.has(v), request.survivors.size + 1)
    const keys = parse('keyShares', (v) => request.dropped.has(v), request.dropped.size)
    // Stored by owner; the holder's index is the x-coordinate.
    for (const s of self) push(this.#selfMaskShares, s.x, { x: from, share: s.share })
    for (const s of keys) push(this.#keyShares, s.x, { x: from, share: s.share })
    this.#u5.add(from)
  }

  // ---- closing stages ----------------------------------------------------------------------

  #requireThreshold(count: number, what: string): void {
    if (count < this.#t) throw new HearthError('HEARTH_ERR_SECAGG_THRESHOLD', `only ${count} clients ${what}; threshold is ${this.#t}`)
  }

  /**
   * Removes, until none is left, clients with fewer than t − 1 neighbours in `set`: their shares
   * could never be recovered (SecAgg+; on the complete graph this is the |U| >= t check).
   */
  #prune(set: Set<number>): number[] {
    const removed: number[] = []
    for (let changed = true; changed; ) {
      changed = false
      for (const u of set) {
        let alive = 0
        for (const v of this.graph.neighbours(u)) if (set.has(v)) alive++
        if (alive + 1 < this.#t) {
          set.delete(u)
          removed.push(u)
          changed = true
        }
      }
    }
    return removed
  }

  #excluded(removed: readonly number[], stage: SecAggStage): Outgoing[] {
    return removed.map((to) => ({
      to,
      message: {
        type: SecAggMessageType.Abort,
        ...this.#context,
        stage,
        code: 'HEARTH_ERR_SECAGG_THRESHOLD',
        reason: `fewer than ${this.#t - 1} of this client's neighbours remain`,
      },
    }))
  }

  #closeAdvertiseKeys(now: number): Outgoing[] {
    const removed = this.#prune(this.#u1)
    for (const u of removed) this.#keys.delete(u)
    this.#counts = { ...this.#counts, advertised: this.#u1.size }
    this.#requireThreshold(this.#u1.size, 'advertised keys')
    this.#state = ServerState.ShareKeys
    this.#deadline = now + this.#timeouts[SecAggStage.ShareKeys]
    const out = this.#excluded(removed, SecAggStage.AdvertiseKeys)
    for (const u of sorted(this.#u1)) {
      const peers = this.graph.neighbours(u).filter((v) => this.#u1.has(v))
      this.#keysSentTo.set(u, peers)
      const keys = peers.map((v) => (this.#keys.get(v) as AdvertisedKeys).wire)
      out.push({ to: u, message: { type: SecAggMessageType.Keys, ...this.#context, keys, deadline: this.#deadline } })
    }
    return out
  }

  #closeShareKeys(now: number): Outgoing[] {
    const removed = this.#prune(this.#u2)
    this.#counts = { ...this.#counts, shared: this.#u2.size }
    this.#requireThreshold(this.#u2.size, 'shared keys')
    this.#state = ServerState.MaskedInputCollection
    this.#deadline = now + this.#timeouts[SecAggStage.MaskedInputCollection]
    this.#sum = new Uint32Array(this.config.vectorLength)
    const out = this.#excluded(removed, SecAggStage.ShareKeys)
    for (const u of sorted(this.#u2)) {
      const envelopes = (this.#inbox.get(u) ?? []).filter((e) => this.#u2.has(e.from)).sort((a, b) => a.from - b.from)
      out.push({ to: u, message: { type: SecAggMessageType.Shares, ...this.#context, envelopes, deadline: this.#deadline } })
    }
    this.#inbox.clear()
    this.#keysSentTo.clear()
    return out
  }

  #closeMaskedInput(now: number): Outgoing[] {
    this.#counts = { ...this.#counts, masked: this.#u3.size }
    this.#requireThreshold(this.#u3.size, 'sent masked inputs')
    this.#checkRecoverable(this.#u3)
    if (this.config.consistencyCheck === true) {
      this.#state = ServerState.ConsistencyCheck
      this.#deadline = now + this.#timeouts[SecAggStage.ConsistencyCheck]
      const survivors = sorted(this.#u3)
      return survivors.map((to) => ({
        to,
        message: { type: SecAggMessageType.ConsistencyRequest, ...this.#context, survivors, deadline: this.#deadline },
      }))
    }
    return this.#requestUnmasking(this.#u3, now)
  }

  #closeConsistencyCheck(now: number): Outgoing[] {
    this.#counts = { ...this.#counts, signed: this.#u4.size }
    this.#requireThreshold(this.#u4.size, 'signed the survivors list')
    this.#checkRecoverable(this.#u4)
    return this.#requestUnmasking(this.#u4, now)
  }

  /**
   * Fails fast, before anyone reveals a share, when some secret needed for the sum has fewer
   * than t holders among `responders`: b_u of each u in U3 (held by u and its neighbours) and
   * s_v^SK of each v in U2 \ U3 adjacent to U3 (held by v's neighbours).
   */
  #checkRecoverable(responders: ReadonlySet<number>): void {
    for (const u of this.#u3) {
      let holders = responders.has(u) ? 1 : 0
      for (const v of this.graph.neighbours(u)) if (responders.has(v)) holders++
      if (holders < this.#t) {
        throw new HearthError('HEARTH_ERR_SECAGG_THRESHOLD', `client ${u}'s self mask has ${holders} share holders left; threshold is ${this.#t}`)
      }
    }
    for (const v of this.#u2) {
      if (this.#u3.has(v)) continue
      let holders = 0
      let needed = false
      for (const w of this.graph.neighbours(v)) {
        if (responders.has(w)) holders++
        if (this.#u3.has(w)) needed = true
      }
      if (needed && holders < this.#t) {
        throw new HearthError('HEARTH_ERR_SECAGG_THRESHOLD', `dropped client ${v}'s masking key has ${holders} share holders left; threshold is ${this.#t}`)
      }
    }
  }

  #requestUnmasking(recipients: ReadonlySet<number>, now: number): Outgoing[] {
    this.#state = ServerState.Unmasking
    this.#deadline = now + this.#timeouts[SecAggStage.Unmasking]
    const out: Outgoing[] = []
    for (const u of sorted(recipients)) {
      const survivors: number[] = []
      const dropped: number[] = []
      for (const v of this.graph.neighbours(u)) {
        if (this.#u3.has(v)) survivors.push(v)
        else if (this.#u2.has(v)) dropped.push(v)
      }
      this.#requests.set(u, { survivors: new Set(survivors), dropped: new Set(dropped) })
      let signatures: SurvivorsSignature[] | undefined
      if (this.config.consistencyCheck === true) {
        signatures = []
        for (const v of this.graph.neighbours(u)) {
          const signature = this.#signatures.get(v)
          if (signature !== undefined) signatures.push({ index: v, signature })
        }
      }
      const message: SecAggServerMessage = {
        type: SecAggMessageType.UnmaskRequest,
        ...this.#context,
        survivors,
        dropped,
        ...(signatures === undefined ? {} : { signatures }),
        deadline: this.#deadline,
      }
      out.push({ to: u, message })
    }
    this.#signatures.clear()
    return out
  }

  /**
   * Unmasking (§4 round 4, server): z = Σ_{u∈U3} y_u − Σ_{u∈U3} PRG(b_u)
   *                                    + Σ_{u∈U3, v∈U2\U3, v~u} Δ_{v,u}·PRG(s_{v,u}),
   * i.e. remove each survivor's self mask and, for each dropped neighbour v, the pairwise mask
   * Δ_{u,v}·PRG(s_{u,v}) that u added (Δ_{v,u} = −Δ_{u,v}).
   */
  async #closeUnmasking(): Promise<Outgoing[]> {
    this.#counts = { ...this.#counts, unmasked: this.#u5.size }
    this.#requireThreshold(this.#u5.size, 'sent their shares')
    const reconstructor = new ShamirReconstructor(this.#t)
    const need = (shares: Share[] | undefined, what: string): Share[] => {
      if (shares === undefined || shares.length < this.#t) {
        throw new HearthError('HEARTH_ERR_SECAGG_THRESHOLD', `${what}: ${shares?.length ?? 0} shares arrived; threshold is ${this.#t}`)
      }
      return shares
    }
    // Check every secret has enough shares before removing any mask.
    const survivors = sorted(this.#u3)
    for (const u of survivors) need(this.#selfMaskShares.get(u), `self mask of client ${u}`)
    const dropped = sorted(this.#u2).filter((v) => !this.#u3.has(v) && this.graph.neighbours(v).some((w) => this.#u3.has(w)))
    for (const v of dropped) need(this.#keyShares.get(v), `masking key of dropped client ${v}`)

    const context = this.#context
    const keys = this.#keys
    const graph = this.graph
    const u3 = this.#u3
    const selfMaskShares = this.#selfMaskShares
    const keyShares = this.#keyShares
    const x25519 = this.config.x25519
    async function* jobs(): AsyncGenerator<MaskJob> {
      for (const u of survivors) {
        const b = reconstructor.reconstruct(selfMaskShares.get(u) as Share[])
        yield { seed: deriveKey(b, KeyPurpose.SelfMask, context, [u]), sign: -1 }
        b.fill(0)
      }
      for (const v of dropped) {
        const secretKey = reconstructor.reconstruct(keyShares.get(v) as Share[])
        if (!bytesEqual(publicKeyOf(secretKey), (keys.get(v) as AdvertisedKeys).maskingKey)) {
          throw new HearthError('HEARTH_ERR_SECAGG_TAMPERED', `the shares of client ${v}'s masking key do not match its public key`)
        }
        const agreement = await X25519Agreement.create(secretKey, x25519)
        const peers = graph.neighbours(v).filter((u) => u3.has(u))
        const shared = await Promise.all(peers.map((u) => agreement.agree((keys.get(u) as AdvertisedKeys).maskingKey)))
        for (const [i, u] of peers.entries()) {
          // u added Δ_{u,v}·PRG(s_{u,v}) with Δ_{u,v} = +1 iff u > v: take it away.
          yield { seed: derivePairKey(shared[i] as Uint8Array, KeyPurpose.PairwiseMask, context, u, v), sign: u > v ? -1 : 1 }
        }
        secretKey.fill(0)
      }
    }
    const sum = this.#sum as Uint32Array
    await applyMasks(sum, jobs(), this.#prg, this.config.concurrency)
    if (this.config.modulusBits < 32) {
      const mod = 2 ** this.config.modulusBits - 1
      for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) & mod
    }
    this.#result = { sum, survivors, counts: this.#counts }
    this.#state = ServerState.Completed
    this.#selfMaskShares.clear()
    this.#keyShares.clear()
    this.#sum = undefined
    return survivors.map((to) => ({ to, message: { type: SecAggMessageType.Result, ...this.#context, survivors: survivors.length } }))
  }

  #abort(error: HearthError): Outgoing[] {
    const stage = this.#state as SecAggStage
    this.#error = error
    this.#state = ServerState.Aborted
    this.#sum = undefined
    this.#selfMaskShares.clear()
    this.#keyShares.clear()
    this.#inbox.clear()
    // Every client of the group is told; those that already left simply never read it.
    return Array.from({ length: this.#n }, (_, i) => ({
      to: i + 1,
      message: { type: SecAggMessageType.Abort, ...this.#context, stage, code: error.code, reason: error.message },
    }))
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}

function sorted(set: Iterable<number>): number[] {
  return [...set].sort((a, b) => a - b)
}
