import { describe, expect, test } from 'vitest'
import fc from 'fast-check'
import { decodeFrame, encodeFrame, FRAME_HEADER_BYTES, FrameKind } from '../../protocol/frames.ts'
import { HearthError } from '../../protocol/errors.ts'

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(HearthError)
    expect((error as HearthError).code).toBe(code)
    return
  }
  throw new Error(`expected ${code}, nothing was thrown`)
}

describe('binary frames', () => {
  test('known bytes: header layout is little-endian as documented', () => {
    const bytes = encodeFrame({ kind: FrameKind.Update, id: 7, values: new Float32Array([1, -2]) })
    expect(Array.from(bytes)).toEqual([
      0x48, 0x54, 0x52, 0x48, // magic 0x48525448, little-endian
      1, 1, 0, 0, // version, kind, reserved
      7, 0, 0, 0, // round id
      2, 0, 0, 0, // element count
      0, 0, 0x80, 0x3f, // 1.0f
      0, 0, 0, 0xc0, // -2.0f
    ])
  })

  test('round-trips float and uint32 payloads, also from an unaligned view', () => {
    fc.assert(
      fc.property(
        fc.float32Array({ noNaN: true, noDefaultInfinity: true, maxLength: 64 }),
        fc.uint32Array({ maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 0, max: 3 }),
        (floats, ints, id, pad) => {
          const float = encodeFrame({ kind: FrameKind.Update, id, values: floats })
          const shifted = new Uint8Array(float.length + pad)
          shifted.set(float, pad)
          const decoded = decodeFrame(shifted.subarray(pad))
          expect(decoded.kind).toBe(FrameKind.Update)
          expect(decoded.id).toBe(id)
          expect(Array.from(decoded.values)).toEqual(Array.from(floats))
          const masked = decodeFrame(encodeFrame({ kind: FrameKind.MaskedUpdate, id, values: ints }))
          expect(Array.from(masked.values)).toEqual(Array.from(ints))
        },
      ),
    )
  })

  test('rejects malformed frames with a typed error', () => {
    const good = encodeFrame({ kind: FrameKind.Update, id: 1, values: new Float32Array(3) })
    expectCode(() => decodeFrame(good.subarray(0, 10)), 'HEARTH_ERR_MALFORMED_FRAME')
    expectCode(() => decodeFrame(good.subarray(0, good.length - 4)), 'HEARTH_ERR_MALFORMED_FRAME')
    for (const [offset, value] of [[0, 0], [4, 9], [5, 42], [6, 1]] as const) {
      const bad = good.slice()
      bad[offset] = value
      expectCode(() => decodeFrame(bad), 'HEARTH_ERR_MALFORMED_FRAME')
    }
    const nan = encodeFrame({ kind: FrameKind.Update, id: 1, values: new Float32Array([0, Number.NaN]) })
    expectCode(() => decodeFrame(nan), 'HEARTH_ERR_MALFORMED_FRAME')
    expect(good.length).toBe(FRAME_HEADER_BYTES + 12)
  })

  test('refuses an id outside uint32', () => {
    expect(() => encodeFrame({ kind: FrameKind.Weights, id: -1, values: new Float32Array(1) })).toThrow(RangeError)
  })
})
