/**
 * Dates, counts and sizes in the panel's locale (`PanelStrings.locale`).
 */
export interface PanelFormat {
  readonly date: (epochMs: number) => string
  readonly count: (n: number) => string
  readonly bytes: (n: number) => string
}

const BYTE_UNITS = ['byte', 'kilobyte', 'megabyte', 'gigabyte'] as const

export function panelFormat(locale: string | undefined): PanelFormat {
  const dates = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' })
  const counts = new Intl.NumberFormat(locale)
  return {
    date: (epochMs) => dates.format(epochMs),
    count: (n) => counts.format(n),
    bytes: (n) => {
      let unit = 0
      let value = n
      while (value >= 1000 && unit < BYTE_UNITS.length - 1) {
        value /= 1000
        unit++
      }
      return new Intl.NumberFormat(locale, { style: 'unit', unit: BYTE_UNITS[unit], unitDisplay: 'short', maximumFractionDigits: 1 }).format(value)
    },
  }
}
