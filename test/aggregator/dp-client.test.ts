/**
 * The device side of a DP round against a real aggregator: `RoundParticipant` (with a fake
 * worker that returns known deltas) clips to the plan's norm and appends the clipping indicator
 * before encoding, and the aggregator counts how many were clipped.
 */
import { describe, expect, test } from 'vitest'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { RoundParticipant } from '../../client/round-participant.ts'
import type { RoundEventDetail } from '../../client/events.ts'
import { ModelFetcher } from '../../client/transport/model-fetcher.ts'
import { ClipIndicator, l2Norm } from '../../protocol/clip.ts'
import { decodeFrame } from '../../protocol/frames.ts'
import type { HearthError } from '../../protocol/errors.ts'
import { PROTOCOL_VERSION } from '../../protocol/messages.ts'
import type { RoundPlanMessage, ServerMessage } from '../../protocol/messages.ts'
import type { HearthWorkerApi, RoundTrainingRequest, RoundTrainingResult } from '../../worker/api.ts'
import { APP_KEY, eventually, getJson, TestClient, TINY, TINY_LENGTH, useApp } from './helpers.ts'

const server = useApp()

/** A worker whose training yields `delta`; everything else is unused here. */
function fakeWorker(delta: Float32Array): HearthWorkerApi {
  const worker: Pick<HearthWorkerApi, 'trainRound' | 'noteRound'> = {
    trainRound: async (request: RoundTrainingRequest): Promise<RoundTrainingResult> => ({ roundId: request.roundId, delta: delta.slice(), examples: 10, loss: 0.5, durationMs: 1 }),
    noteRound: async () => {},
  }
  return worker as HearthWorkerApi
}

interface Device {
  readonly participant: RoundParticipant
  /** Every frame the participant sent. */
  readonly sent: Uint8Array[]
  readonly events: RoundEventDetail[]
  readonly errors: HearthError[]
}

/** A participant training to `delta`, fetching weights with `fetcher`, sending through `send`. */
function device(delta: Float32Array, fetcher: ModelFetcher, send: (bytes: Uint8Array) => void = () => {}): Device {
  const sent: Uint8Array[] = []
  const events: RoundEventDetail[] = []
  const errors: HearthError[] = []
  const participant = new RoundParticipant({
    model: TINY.name,
    worker: fakeWorker(delta),
    fetcher,
    sendBinary: (bytes) => {
      sent.push(bytes)
      send(bytes)
    },
    sendMessage: () => {},
    adoptVersion: async () => {},
    onRound: (detail) => events.push(detail),
    onError: (error) => errors.push(error),
  })
  return { participant, sent, events, errors }
}

/** A delta of norm `norm` along a fixed direction. */
function deltaOfNorm(norm: number): Float32Array {
  const direction = Float32Array.from({ length: TINY_LENGTH }, (_, i) => (i % 3) - 1 + 0.5)
  const scale = norm / l2Norm(direction)
  return direction.map((x) => x * scale)
}

describe('RoundParticipant in a central-DP round', () => {
  test('clips to the plan, appends the indicator, and the aggregator counts the clipped', async () => {
    const clipNorm = 1
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 10_000, uploadTimeoutMs: 5_000, pauseMs: 60_000, privacy: { mode: 'central', clipNorm, noiseMultiplier: 1 } },
    })
    const norms = [0.4, 3, 25]
    const devices: (Device & { norm: number })[] = []
    for (const norm of norms) {
      const client = server.track(await TestClient.connect(running.wsUrl))
      const fetcher = new ModelFetcher(new URL(running.url), TINY.name, APP_KEY, (input, init) => fetch(input, init))
      const d = device(deltaOfNorm(norm), fetcher, (bytes) => client.sendBytes(bytes))
      // Relay before checking in, so no message can arrive unheard.
      client.socket.on('message', (data) => d.participant.handle(JSON.parse(String(data)) as ServerMessage))
      client.send({ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: APP_KEY, model: TINY.name })
      await client.next('welcome')
      devices.push({ ...d, norm })
    }
    for (const d of devices) await eventually(() => d.events.some((e) => e.status === 'published'), 10_000, 'the published round')
    for (const d of devices) {
      expect(d.errors).toEqual([])
      expect(d.sent).toHaveLength(1)
      const frame = decodeFrame(d.sent[0]!)
      expect(frame.values.length).toBe(TINY_LENGTH + 1)
      const delta = frame.values.subarray(0, TINY_LENGTH) as Float32Array
      expect(l2Norm(delta)).toBeLessThanOrEqual(clipNorm)
      expect(frame.values[TINY_LENGTH]).toBe(d.norm > clipNorm ? ClipIndicator.Clipped : ClipIndicator.Unclipped)
      if (d.norm > clipNorm) expect(l2Norm(delta)).toBeCloseTo(clipNorm, 5)
      else expect(Array.from(delta)).toEqual(Array.from(deltaOfNorm(d.norm)))
    }
    const roundId = decodeFrame(devices[0]!.sent[0]!).id
    const record = (await getJson<RoundRecord>(running.url, `/admin/rounds/${roundId}`)).body
    expect(record.privacy?.clipping).toMatchObject({ uploads: 3, clippedCount: 2, clippedFraction: 2 / 3, noised: false })
  })

  test('refuses to upload under a privacy mode it does not know or distributed DP without secure aggregation, and uploads the raw delta without privacy', async () => {
    const delta = deltaOfNorm(5)
    // Base weights from memory instead of HTTP.
    const fetcher = { weights: async (version: number) => ({ version, weights: new Float32Array(TINY_LENGTH) }) } as unknown as ModelFetcher
    const { participant, sent, events, errors } = device(delta, fetcher)
    const plan = (roundId: number, privacy?: unknown): RoundPlanMessage =>
      ({ type: 'round-plan', roundId, model: TINY.name, baseVersion: 1, vectorLength: TINY_LENGTH, uploadDeadline: Date.now() + 60_000, training: { epochs: 1, batchSize: 1, learningRate: 0.1, maxExamples: 1 }, ...(privacy === undefined ? {} : { privacy }) }) as RoundPlanMessage
    participant.handle(plan(7, { mode: 'local', clipNorm: 1 }))
    await eventually(() => events.some((e) => e.roundId === 7 && e.status === 'skipped'), 5_000, 'the skipped round')
    expect(sent).toHaveLength(0)
    expect(errors.map((e) => e.code)).toEqual(['HEARTH_ERR_UNSUPPORTED_PROTOCOL'])
    // Distributed DP adds its noise inside secure aggregation: a plain round asking for it would upload un-noised.
    participant.handle(plan(9, { mode: 'distributed', clipNorm: 1, mechanism: 'discrete-gaussian', scale: 100, localVariance: 10 }))
    await eventually(() => events.some((e) => e.roundId === 9 && e.status === 'skipped'), 5_000, 'the skipped distributed round')
    expect(sent).toHaveLength(0)
    expect(errors.map((e) => e.code)).toEqual(['HEARTH_ERR_UNSUPPORTED_PROTOCOL', 'HEARTH_ERR_UNSUPPORTED_PROTOCOL'])
    participant.handle(plan(8))
    await eventually(() => sent.length === 1, 5_000, 'the plain upload')
    expect(Array.from(decodeFrame(sent[0]!).values)).toEqual(Array.from(delta))
  })
})
