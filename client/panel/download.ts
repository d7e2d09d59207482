/**
 * "Download my data": the export as a JSON file, made in the page (nothing goes to a server).
 */
import type { HearthExport } from '../../protocol/personal-data.ts'

/** `hearth-data-2026-12-01.json`, dated by the export itself. */
export function exportFileName(data: HearthExport): string {
  return `hearth-data-${new Date(data.exportedAt).toISOString().slice(0, 10)}.json`
}

export function downloadExport(data: HearthExport, owner: Document = document): void {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }))
  const link = owner.createElement('a')
  link.href = url
  link.download = exportFileName(data)
  link.hidden = true
  owner.body.append(link)
  link.click()
  link.remove()
  // The click starts the download synchronously; revoking later leaves the browser time to read it.
  setTimeout(() => URL.revokeObjectURL(url), 60_000)
}
