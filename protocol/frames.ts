/**
 * Binary frames: model updates and model weights travel as one header plus a flat vector,
 * never as JSON (DESIGN.md §4).
 *
 * Layout, little-endian, 16-byte header then the payload:
 *
 * | offset | size | field                                                    |
 * |--------|------|----------------------------------------------------------|
 * | 0      | 4    | magic `0x48525448` ("HRTH")                              |
 * | 4      | 1    | format version (1)                                       |
 * | 5      | 1    | kind, see {@link FrameKind}                              |
 * | 6      | 2    | reserved, must be 0                                      |
 * | 8      | 4    | id: the round id for updates, the model version for weights |
 * | 12     | 4    | element count n                                          |
 * | 16     | 4n   | n float32 or uint32 elements                             |
 */
import { HearthError } from './errors.ts'

export const FRAME_MAGIC = 0x48525448
export const FRAME_VERSION = 1
export const FRAME_HEADER_BYTES = 16

/** What a frame carries. Values are on the wire: never renumber. */
export const FrameKind = {
  /** A client's float32 model delta, in the clear (plain averaging only). */
  Update: 1,
  /** A client's masked update in `Z_{2^b}` (secure aggregation). */
  MaskedUpdate: 2,
  /** A model version's federated weights. */
  Weights: 3,
} as const
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind]

/** A decoded frame. `values` views the frame's own buffer when alignment allows. */
export type Frame =
  | { kind: typeof FrameKind.Update | typeof FrameKind.Weights; id: number; values: Float32Array }
  | { kind: typeof FrameKind.MaskedUpdate; id: number; values: Uint32Array }

const KINDS: ReadonlySet<number> = new Set(Object.values(FrameKind))
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

function assertId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) {
    throw new RangeError(`frame id must be a uint32, got ${id}`)
  }
}

/** Encodes a frame. The returned bytes own a fresh buffer, ready to send or transfer. */
export function encodeFrame(frame: Frame): Uint8Array {
  assertId(frame.id)
  const n = frame.values.length
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + 4 * n)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, FRAME_MAGIC, true)
  view.setUint8(4, FRAME_VERSION)
  view.setUint8(5, frame.kind)
  view.setUint16(6, 0, true)
  view.setUint32(8, frame.id, true)
  view.setUint32(12, n, true)
  if (LITTLE_ENDIAN) {
    bytes.set(new Uint8Array(frame.values.buffer, frame.values.byteOffset, 4 * n), FRAME_HEADER_BYTES)
  } else {
    const float = frame.kind !== FrameKind.MaskedUpdate
    for (let i = 0; i < n; i++) {
      const offset = FRAME_HEADER_BYTES + 4 * i
      if (float) view.setFloat32(offset, frame.values[i] as number, true)
      else view.setUint32(offset, frame.values[i] as number, true)
    }
  }
  return bytes
}

/**
 * Decodes and validates a frame. Throws `HEARTH_ERR_MALFORMED_FRAME` for anything that is not
 * a well-formed frame; it does not judge whether the frame fits a round (that is the caller's).
 */
export function decodeFrame(data: Uint8Array): Frame {
  if (data.byteLength < FRAME_HEADER_BYTES) {
    throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', `${data.byteLength} bytes is shorter than the header`)
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  if (view.getUint32(0, true) !== FRAME_MAGIC) throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', 'bad magic')
  const version = view.getUint8(4)
  if (version !== FRAME_VERSION) throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', `unknown format version ${version}`)
  const kind = view.getUint8(5)
  if (!KINDS.has(kind)) throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', `unknown kind ${kind}`)
  if (view.getUint16(6, true) !== 0) throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', 'reserved bits set')
  const id = view.getUint32(8, true)
  const n = view.getUint32(12, true)
  if (data.byteLength !== FRAME_HEADER_BYTES + 4 * n) {
    throw new HearthError(
      'HEARTH_ERR_MALFORMED_FRAME',
      `header announces ${n} elements but the payload holds ${(data.byteLength - FRAME_HEADER_BYTES) / 4}`,
    )
  }
  const start = data.byteOffset + FRAME_HEADER_BYTES
  if (kind === FrameKind.MaskedUpdate) {
    return { kind, id, values: readElements(data, start, n, Uint32Array, (o) => view.getUint32(o, true)) }
  }
  const values = readElements(data, start, n, Float32Array, (o) => view.getFloat32(o, true))
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(values[i])) {
      throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', `element ${i} is not a finite number`)
    }
  }
  return { kind: kind as typeof FrameKind.Update | typeof FrameKind.Weights, id, values }
}

function readElements<T extends Float32Array | Uint32Array>(
  data: Uint8Array,
  start: number,
  n: number,
  Ctor: { new (buffer: ArrayBufferLike, offset: number, length: number): T; new (length: number): T },
  read: (offset: number) => number,
): T {
  // Zero-copy when aligned; otherwise (e.g. a Node Buffer slice) copy element by element.
  if (LITTLE_ENDIAN && start % 4 === 0) return new Ctor(data.buffer, start, n)
  const out = new Ctor(n)
  for (let i = 0; i < n; i++) out[i] = read(FRAME_HEADER_BYTES + 4 * i)
  return out
}
