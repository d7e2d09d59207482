import { describe, expect, test } from 'vitest'
import { HearthError } from '../../protocol/errors.ts'
import { toInteractionEvent } from '../../protocol/events.ts'

function invalid(input: unknown, field: string): void {
  try {
    toInteractionEvent(input, 0)
  } catch (error) {
    expect(error).toBeInstanceOf(HearthError)
    expect((error as HearthError).code).toBe('HEARTH_ERR_INVALID_ARGUMENT')
    expect((error as HearthError).message).toContain(field)
    return
  }
  throw new Error(`accepted an invalid ${field}`)
}

describe('interaction events', () => {
  test('keeps valid input and stamps the time', () => {
    expect(toInteractionEvent({ item: 'a', kind: 'like' }, 123)).toEqual({ item: 'a', kind: 'like', at: 123 })
    expect(toInteractionEvent({ item: 'a', kind: 'view', at: 5, context: { hour: 9, surface: 'home', mobile: true } }, 1)).toEqual({
      item: 'a',
      kind: 'view',
      at: 5,
      context: { hour: 9, surface: 'home', mobile: true },
    })
  })

  test('rejects bad input naming the field', () => {
    invalid(null, 'event')
    invalid({ kind: 'view' }, 'event.item')
    invalid({ item: 'x'.repeat(257), kind: 'view' }, 'event.item')
    invalid({ item: 'a', kind: 'stare' }, 'event.kind')
    invalid({ item: 'a', kind: 'view', at: -1 }, 'event.at')
    invalid({ item: 'a', kind: 'view', context: [] }, 'event.context')
    invalid({ item: 'a', kind: 'view', context: { x: { nested: 1 } } }, 'event.context.x')
    invalid({ item: 'a', kind: 'view', context: { x: Number.NaN } }, 'event.context.x')
  })
})
