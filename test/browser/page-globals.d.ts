import type { HearthGlobal } from '../../client/script-tag.ts'

declare global {
  interface Window {
    /** Defined by the script-tag build in test pages. */
    Hearth: HearthGlobal
  }
}
