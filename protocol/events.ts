/**
 * The vocabulary of on-device interaction events, shared by the page (which validates what the
 * app records) and the worker (which stores and learns from it). Events never leave the device.
 */
import { HearthError } from './errors.ts'
import { toItemFeatures } from './features.ts'
import type { ItemFeatures } from './features.ts'

/** Kinds of interaction an app can record. Values are stored in IndexedDB: never rename. */
export const EventKind = {
  View: 'view',
  Click: 'click',
  Like: 'like',
  Purchase: 'purchase',
  Dismiss: 'dismiss',
  Dislike: 'dislike',
} as const
export type EventKind = (typeof EventKind)[keyof typeof EventKind]

/**
 * How strongly each kind says "the user wants this": positive for engagement, growing from view
 * to purchase; negative for explicit rejection. Used as the training target weight.
 */
export const EVENT_WEIGHTS: Readonly<Record<EventKind, number>> = {
  view: 0.25,
  click: 0.5,
  like: 1,
  purchase: 1.5,
  dismiss: -0.5,
  dislike: -1,
}

/** Context values an app may attach to an event (time of day, surface, device class...). */
export type EventContext = Readonly<Record<string, string | number | boolean>>

/** What an app passes to `record()`. */
export interface InteractionInput {
  /** The app's own item id. Hashed on the device; the catalog never leaves it. */
  readonly item: string
  readonly kind: EventKind
  readonly context?: EventContext
  /**
   * Features of the item (categories, tags, text, numbers: `protocol/features.ts`), read by
   * models whose spec lists item features. Features the app marked sensitive are dropped on the
   * device unless the user consented to their category.
   */
  readonly features?: ItemFeatures
  /** Milliseconds since the epoch; defaults to now. */
  readonly at?: number
}

/** An event as stored on the device. */
export interface InteractionEvent {
  readonly item: string
  readonly kind: EventKind
  readonly at: number
  readonly context?: EventContext
  readonly features?: ItemFeatures
}

export const MAX_ITEM_ID_LENGTH = 256
const MAX_CONTEXT_KEYS = 32
const KINDS: ReadonlySet<string> = new Set(Object.values(EventKind))

/**
 * Validates an app's input and returns the event to store. Throws `HEARTH_ERR_INVALID_ARGUMENT`
 * naming the offending field, so app developers see their mistake at the call site.
 */
export function toInteractionEvent(input: unknown, now: number): InteractionEvent {
  if (typeof input !== 'object' || input === null) {
    throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', 'event must be an object like { item, kind }')
  }
  const { item, kind, context, at, features } = input as Record<string, unknown>
  if (typeof item !== 'string' || item.length === 0 || item.length > MAX_ITEM_ID_LENGTH) {
    throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', `event.item must be a string of 1 to ${MAX_ITEM_ID_LENGTH} characters`)
  }
  if (typeof kind !== 'string' || !KINDS.has(kind)) {
    throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', `event.kind must be one of ${[...KINDS].join(', ')}, got ${String(kind)}`)
  }
  if (at !== undefined && (typeof at !== 'number' || !Number.isFinite(at) || at < 0)) {
    throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', 'event.at must be a non-negative epoch time in milliseconds')
  }
  const event: { item: string; kind: EventKind; at: number; context?: EventContext; features?: ItemFeatures } = {
    item,
    kind: kind as EventKind,
    at: (at as number | undefined) ?? now,
  }
  if (context !== undefined) event.context = toEventContext(context)
  if (features !== undefined) event.features = toItemFeatures(features, 'event.features')
  return event
}

/** Validates a context object (of an event, or of a `rank()` call: `where` names it). */
export function toEventContext(context: unknown, where = 'event.context'): EventContext {
  if (typeof context !== 'object' || context === null || Array.isArray(context)) {
    throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', `${where} must be a plain object`)
  }
  const entries = Object.entries(context)
  if (entries.length > MAX_CONTEXT_KEYS) {
    throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', `${where} may hold at most ${MAX_CONTEXT_KEYS} keys`)
  }
  const out: Record<string, string | number | boolean> = {}
  for (const [key, value] of entries) {
    const type = typeof value
    if (type !== 'string' && type !== 'boolean' && !(type === 'number' && Number.isFinite(value))) {
      throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', `${where}.${key} must be a string, a finite number or a boolean`)
    }
    out[key] = value as string | number | boolean
  }
  return out
}
