import { describe, expect, test, vi } from 'vitest'
import { RecordBuffer } from '../../client/record-buffer.ts'
import type { InteractionEvent } from '../../protocol/events.ts'

const event = (i: number): InteractionEvent => ({ item: `i${i}`, kind: 'view', at: i })

describe('record buffer', () => {
  test('batches events until the timer fires, then writes them in one call', async () => {
    vi.useFakeTimers()
    try {
      const writes: InteractionEvent[][] = []
      const buffer = new RecordBuffer(async (events) => void writes.push(events), 200)
      for (let i = 0; i < 5; i++) buffer.push(event(i))
      expect(writes).toEqual([])
      await vi.advanceTimersByTimeAsync(200)
      expect(writes.map((w) => w.length)).toEqual([5])
      expect(buffer.pending).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })

  test('writes full batches at once and keeps the order across slow writes', async () => {
    const written: string[] = []
    const buffer = new RecordBuffer(async (events) => {
      await new Promise((r) => setTimeout(r, 5))
      written.push(...events.map((e) => e.item))
    }, 10_000)
    for (let i = 0; i < RecordBuffer.MAX_BATCH + 3; i++) buffer.push(event(i))
    await buffer.flush()
    expect(written).toHaveLength(RecordBuffer.MAX_BATCH + 3)
    expect(written).toEqual(written.map((_, i) => `i${i}`))
  })

  test('a failed write rejects its flush but does not block later writes', async () => {
    let fail = true
    const written: string[] = []
    const buffer = new RecordBuffer(async (events) => {
      if (fail) throw new Error('disk on fire')
      written.push(...events.map((e) => e.item))
    }, 10_000)
    buffer.push(event(1))
    await expect(buffer.flush()).rejects.toThrow('disk on fire')
    fail = false
    buffer.push(event(2))
    await buffer.flush()
    expect(written).toEqual(['i2'])
  })
})
