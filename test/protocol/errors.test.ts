import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { ErrorCatalogue, errorFromBody, HearthError, isErrorCode } from '../../protocol/errors.ts'

describe('error catalogue', () => {
  test('docs/errors.md documents every code with its status and message, and nothing else', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
    const rows = [...doc.matchAll(/^\| `(HEARTH_ERR_[A-Z_]+)` \| (\d+) \| ([^|]+) \| ([^|]+) \|$/gm)]
    const documented = new Map(rows.map((row) => [row[1], { status: Number(row[2]), message: row[3]?.trim(), fix: row[4]?.trim() }]))
    expect([...documented.keys()].sort()).toEqual(Object.keys(ErrorCatalogue).sort())
    for (const [code, definition] of Object.entries(ErrorCatalogue)) {
      expect(documented.get(code)).toMatchObject({ status: definition.status, message: definition.message })
      expect(documented.get(code)?.fix?.length).toBeGreaterThan(20)
    }
  })

  test('errors round-trip through their wire form', () => {
    const error = new HearthError('HEARTH_ERR_LATE_UPLOAD', 'round 7 closed at 12:00')
    expect(error.message).toBe('The upload arrived after the stage deadline: round 7 closed at 12:00')
    expect(error.statusCode).toBe(409)
    const back = errorFromBody(JSON.parse(JSON.stringify(error.toBody())) as { code: string; message: string })
    expect(back).toBeInstanceOf(HearthError)
    expect(back.code).toBe('HEARTH_ERR_LATE_UPLOAD')
    expect(back.message).toBe(error.message)
    expect(errorFromBody({ code: 'NOPE' }).code).toBe('HEARTH_ERR_INTERNAL')
    expect(isErrorCode('toString')).toBe(false)
  })
})
