/**
 * A secure-aggregation device for aggregator tests that knows every secret it ever held: a
 * `TestClient` socket driving `SecAggClient` (protocol/secagg/client.ts) one stage at a time,
 * without the worker or training, so a test can stop a round at any stage and then look for
 * those secrets where they must never be (the aggregator's disk).
 *
 * `SecAggClient` keeps its keys in private fields, as it should. The device learns them the way
 * the client makes them: while `advertiseKeys` and `shareKeys` run, every array the CSPRNG
 * fills is recorded (with the `noble` X25519 backend the raw secret keys are drawn there too).
 * Each secret is then picked out of the recording by the protocol's public side: the secret key
 * that gives the advertised public key, the seed the dealt shares reconstruct to. So a change in
 * how the client draws its secrets fails here, loudly, instead of leaving the scan blind.
 *
 * Why not `secagg-exact-device.ts`: that device answers whatever the aggregator sends until the
 * round ends and knows none of its secrets, where a test of this one must stall at a stage it
 * chose and scan for every secret held until then.
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { clipForUpload } from '../../protocol/clip.ts'
import { FRAME_HEADER_BYTES } from '../../protocol/frames.ts'
import type { RoundPlanMessage, SecureAggregationPlan, ServerMessage } from '../../protocol/messages.ts'
import { importShareKey, open, sharesAad } from '../../protocol/secagg/aead.ts'
import { fromBase64 } from '../../protocol/secagg/bytes.ts'
import { SecAggClient } from '../../protocol/secagg/client.ts'
import { derivePairKey, KeyPurpose } from '../../protocol/secagg/kdf.ts'
import { publicKeyOf, X25519Agreement } from '../../protocol/secagg/keys.ts'
import type { ShareKeysMessage } from '../../protocol/secagg/messages.ts'
import { quantize } from '../../protocol/secagg/quantize.ts'
import { reconstructSecret, SHARE_BYTES } from '../../protocol/secagg/shamir.ts'
import type { Share } from '../../protocol/secagg/shamir.ts'
import { TestClient } from './helpers.ts'

/** One secret a device held, named for the failure message. */
export interface DeviceSecret {
  readonly label: string
  readonly bytes: Uint8Array
}

/** The stage messages a device sends, in order (the consistency signature only when enabled). */
export const DeviceStep = {
  AdvertiseKeys: 'advertise-keys',
  ShareKeys: 'share-keys',
  MaskedInput: 'masked-input',
  ConsistencySignature: 'consistency-signature',
  UnmaskShares: 'unmask-shares',
} as const
export type DeviceStep = (typeof DeviceStep)[keyof typeof DeviceStep]

// How long a device waits for the aggregator's next message: stages close as soon as every
// device answered, so this only bounds a failure on a loaded machine.
const WAIT_MS = 20_000

// Envelope plaintext: from ‖ to ‖ share of s^SK ‖ share of b (client.ts, Bonawitz et al. §4 round 1).
const KEY_SHARE_AT = 8
const SEED_SHARE_AT = KEY_SHARE_AT + SHARE_BYTES

export class SecAggTestDevice {
  readonly label: string
  readonly client: TestClient
  /** Everything private this device held so far, in the order it came to hold it. */
  readonly secrets: DeviceSecret[] = []
  /** The federated delta it uploads: random, so its bytes occur nowhere by chance. */
  readonly delta: Float32Array
  #plan: RoundPlanMessage | undefined
  #secagg: SecAggClient | undefined
  #encryptionSecret: Uint8Array | undefined
  #maskingSecret: Uint8Array | undefined
  /** The last message sent, to send again as a barrier (see {@link confirmLast}). */
  #last: { readonly text?: unknown; readonly bytes?: Uint8Array } | undefined

  private constructor(label: string, client: TestClient, vectorLength: number) {
    this.label = label
    this.client = client
    this.delta = new Float32Array(vectorLength)
    for (let i = 0; i < vectorLength; i++) this.delta[i] = (Math.random() - 0.5) / 8
  }

  /** Connects and checks in for `model`, whose federated vector has `vectorLength` elements. */
  static async checkedIn(wsUrl: string, label: string, model: string, vectorLength: number): Promise<SecAggTestDevice> {
    return new SecAggTestDevice(label, await TestClient.checkedIn(wsUrl, model), vectorLength)
  }

  /** The round this device was selected for, once {@link joinRound} returned. */
  get roundId(): number {
    return this.#round().roundId
  }

  /** Waits for the round plan and this device's `secagg/plan`; the group starts at AdvertiseKeys. */
  async joinRound(): Promise<RoundPlanMessage> {
    const plan = await this.client.next('round-plan', () => true, WAIT_MS)
    if (plan.aggregation?.mode !== 'secagg') throw new Error(`${this.label}: round ${plan.roundId} is not a secure round`)
    this.#plan = plan
    const group = await this.client.next('secagg/plan', (m) => m.roundId === plan.roundId, WAIT_MS)
    // noble: key generation draws the raw secret keys from getRandomValues, where they can be recorded.
    this.#secagg = new SecAggClient(group, { x25519: 'noble' })
    return plan
  }

  /** Sends the message of `step`, after waiting for the aggregator's message that opens it. */
  async send(step: DeviceStep): Promise<void> {
    switch (step) {
      case DeviceStep.AdvertiseKeys:
        return this.#advertiseKeys()
      case DeviceStep.ShareKeys:
        return this.#shareKeys()
      case DeviceStep.MaskedInput:
        return this.#maskInput()
      case DeviceStep.ConsistencySignature: {
        const request = await this.#next('secagg/consistency-request')
        return this.#sendText(this.#group().signSurvivors(request))
      }
      case DeviceStep.UnmaskShares: {
        const request = await this.#next('secagg/unmask-request')
        return this.#sendText(this.#group().unmask(request))
      }
    }
  }

  /**
   * Sends the last message again and waits for its refusal as a repeat: one socket is handled in
   * order, so once the refusal arrives the aggregator has taken the first one in.
   */
  async confirmLast(): Promise<void> {
    const last = this.#last
    if (last === undefined) throw new Error(`${this.label} has sent nothing to confirm`)
    if (last.bytes !== undefined) this.client.sendBytes(last.bytes)
    else this.client.send(last.text)
    const error = await this.client.next('error', () => true, WAIT_MS)
    if (error.code !== 'HEARTH_ERR_SECAGG_REPLAY' && error.code !== 'HEARTH_ERR_DUPLICATE_UPLOAD') {
      throw new Error(`${this.label}: the repeat was refused with ${error.code} (${error.message}), not as a repeat`)
    }
  }

  /** The round's result as the aggregator announced it. */
  async result(): Promise<Extract<ServerMessage, { type: 'round-result' }>> {
    const roundId = this.roundId
    return this.client.next('round-result', (m) => m.roundId === roundId, WAIT_MS)
  }

  close(): void {
    this.client.close()
  }

  async #advertiseKeys(): Promise<void> {
    const group = this.#group()
    const { result: message, drawn } = await recordingRandomness(() => group.advertiseKeys())
    // Each secret is picked out by the public key it must give, never by its position.
    const encryption = drawnSecret(drawn, (key) => same(publicKeyOf(key), fromBase64(message.encryptionKey, 'encryptionKey')), `${this.label}: encryption secret key`)
    const masking = drawnSecret(drawn, (key) => same(publicKeyOf(key), fromBase64(message.maskingKey, 'maskingKey')), `${this.label}: masking secret key`)
    this.#encryptionSecret = encryption
    this.#maskingSecret = masking
    this.#keep('encryption secret key c^SK', encryption)
    this.#keep('masking secret key s^SK', masking)
    if (message.signingKey !== undefined) {
      const signingKey = fromBase64(message.signingKey, 'signingKey')
      this.#keep('signing secret key', drawnSecret(drawn, (key) => same(ed25519.getPublicKey(key), signingKey), `${this.label}: signing secret key`))
    }
    this.#sendText(message)
  }

  async #shareKeys(): Promise<void> {
    const group = this.#group()
    const keys = await this.#next('secagg/keys')
    const { result: message, drawn } = await recordingRandomness(() => group.shareKeys(keys))
    const seed = await this.#checkDealtShares(message, keys.keys)
    // The seed the shares reconstruct must be one the client drew: the recording caught it.
    this.#keep('self-mask seed b', drawnSecret(drawn, (bytes) => same(bytes, seed), `${this.label}: self-mask seed`))
    this.#sendText(message)
  }

  async #maskInput(): Promise<void> {
    const group = this.#group()
    const shares = await this.#next('secagg/shares')
    const plan = this.#round()
    const aggregation = plan.aggregation as SecureAggregationPlan
    // What a device uploads in a central-DP secure round: the clipped delta and its indicator,
    // quantized on the upload's norm bound (protocol/messages.ts, SecureAggregationPlan).
    const upload = plan.privacy === undefined ? this.delta : clipForUpload(this.delta, plan.privacy.clipNorm).values
    const input = quantize(upload, aggregation)
    this.#keep('private upload (float32)', new Uint8Array(upload.buffer, upload.byteOffset, upload.byteLength).slice())
    this.#keep('quantized update', new Uint8Array(input.buffer, input.byteOffset, input.byteLength).slice())
    const frame = await group.maskInput(shares, input)
    // The frame's payload is y_u (little-endian uint32); the header is public.
    this.#keep('masked input y', frame.slice(FRAME_HEADER_BYTES))
    this.#last = { bytes: frame }
    this.client.sendBytes(frame)
  }

  /**
   * Opens the envelopes this device sealed (it can: the pair key needs its own c^SK and the
   * peer's c^PK), keeps their shares and ciphertexts as secrets, checks that the shares of s^SK
   * reconstruct the recorded masking key, and returns the self-mask seed b the others reconstruct.
   */
  async #checkDealtShares(message: ShareKeysMessage, peers: readonly { index: number; encryptionKey: string }[]): Promise<Uint8Array> {
    const plan = this.#group().plan
    const context = { roundId: plan.roundId, groupId: plan.groupId }
    const agreement = await X25519Agreement.create(this.#encryptionSecret as Uint8Array, 'noble')
    const keyShares: Share[] = []
    const seedShares: Share[] = []
    for (const envelope of message.envelopes) {
      const sealed = fromBase64(envelope.ciphertext, 'ciphertext')
      this.#keep(`share envelope to client ${envelope.to}`, sealed)
      const peer = peers.find((p) => p.index === envelope.to)
      if (peer === undefined) throw new Error(`${this.label} sealed an envelope for client ${envelope.to}, which advertised no keys`)
      const shared = await agreement.agree(fromBase64(peer.encryptionKey, 'encryptionKey'))
      const key = await importShareKey(derivePairKey(shared, KeyPurpose.ShareEncryption, context, plan.index, envelope.to))
      const plaintext = await open(key, sharesAad(context, plan.index, envelope.to), sealed, 'own envelope')
      const keyShare = plaintext.slice(KEY_SHARE_AT, SEED_SHARE_AT)
      const seedShare = plaintext.slice(SEED_SHARE_AT)
      this.#keep(`share of s^SK for client ${envelope.to}`, keyShare)
      this.#keep(`share of b for client ${envelope.to}`, seedShare)
      keyShares.push({ x: envelope.to, share: keyShare })
      seedShares.push({ x: envelope.to, share: seedShare })
    }
    if (!same(reconstructSecret(keyShares, plan.threshold), this.#maskingSecret as Uint8Array)) {
      throw new Error(`${this.label}: the shares of s^SK do not reconstruct the recorded masking key`)
    }
    return reconstructSecret(seedShares, plan.threshold)
  }

  #next<T extends ServerMessage['type']>(type: T): Promise<Extract<ServerMessage, { type: T }>> {
    const roundId = this.roundId
    return this.client.next(type, (m) => (m as { roundId?: number }).roundId === roundId, WAIT_MS)
  }

  #sendText(message: unknown): void {
    this.#last = { text: message }
    this.client.send(message)
  }

  #keep(what: string, bytes: Uint8Array): void {
    this.secrets.push({ label: `${this.label} ${what}`, bytes })
  }

  #round(): RoundPlanMessage {
    if (this.#plan === undefined) throw new Error(`${this.label} has not joined a round`)
    return this.#plan
  }

  #group(): SecAggClient {
    if (this.#secagg === undefined) throw new Error(`${this.label} has not joined a round`)
    return this.#secagg
  }
}

/** One recording at a time, so that what is drawn meanwhile comes from the call recorded or is told apart by its check. */
let recording: Promise<unknown> = Promise.resolve()

/**
 * Runs `body` while recording every array `crypto.getRandomValues` fills, until its promise
 * settles. Other code may draw meanwhile (another device's IVs): callers pick their secrets out
 * of the recording by what each must match, not by position.
 */
function recordingRandomness<T>(body: () => Promise<T>): Promise<{ result: T; drawn: Uint8Array[] }> {
  const run = recording.then(async () => {
    const platform = globalThis.crypto
    const original = platform.getRandomValues.bind(platform)
    const drawn: Uint8Array[] = []
    const recorder = <A extends ArrayBufferView>(array: A): A => {
      const filled = original(array)
      drawn.push(new Uint8Array(array.buffer, array.byteOffset, array.byteLength).slice())
      return filled
    }
    platform.getRandomValues = recorder as typeof platform.getRandomValues
    try {
      return { result: await body(), drawn }
    } finally {
      // The own property shadowed the prototype's method; removing it restores the platform's.
      delete (platform as { getRandomValues?: unknown }).getRandomValues
    }
  })
  recording = run.catch(() => undefined)
  return run
}

/** The one drawn array that `matches`; anything else means the recording missed the secret. */
function drawnSecret(drawn: readonly Uint8Array[], matches: (bytes: Uint8Array) => boolean, what: string): Uint8Array {
  const found = drawn.filter((bytes) => bytes.length === 32 && matches(bytes))
  if (found.length !== 1) throw new Error(`${what}: ${found.length} of the ${drawn.length} arrays drawn from the CSPRNG match it, expected 1`)
  return found[0] as Uint8Array
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
