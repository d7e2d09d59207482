/**
 * The read-only parts of the panel, rebuilt from each snapshot: what is stored, the rounds the
 * device joined and the recent decisions with their reasons. They hold nothing focusable, so
 * replacing them never moves the keyboard user.
 */
import { EventKind } from '../../protocol/events.ts'
import type { DecisionRecord } from '../../protocol/ranking.ts'
import { h } from './dom.ts'
import type { PanelFormat } from './format.ts'
import type { PanelSnapshot } from './snapshot.ts'
import type { PanelStrings } from './strings.ts'

/** Positions of each decision the panel explains: the ones a user is likely to have seen. */
export const SHOWN_POSITIONS = 3

function entry(term: string, ...details: (Node | string)[]): Node[] {
  return [h('dt', {}, term), h('dd', {}, ...details)]
}

export function storedContent(snapshot: PanelSnapshot, s: PanelStrings, f: PanelFormat): Node[] {
  const { stats } = snapshot
  const kinds = Object.values(EventKind).filter((kind) => stats.eventsByKind[kind] > 0)
  const byKind = h('ul', {}, ...kinds.map((kind) => h('li', {}, `${s.eventKind(kind)}: ${f.count(stats.eventsByKind[kind])}`)))
  const older = stats.events - snapshot.recentEvents
  const byAge = h('ul', {}, h('li', {}, `${s.eventsRecent(s.recentDays)}: ${f.count(snapshot.recentEvents)}`), h('li', {}, `${s.eventsOlder}: ${f.count(older)}`))
  const range = stats.oldestEventAt === null || stats.newestEventAt === null ? [] : [h('p', { class: 'hint' }, s.eventsRange(f.date(stats.oldestEventAt), f.date(stats.newestEventAt)))]
  const dl = h(
    'dl',
    {},
    ...entry(s.eventsTotal, f.count(stats.events)),
    ...(kinds.length === 0 ? [] : entry(s.eventsByKind, byKind)),
    ...(stats.events === 0 ? [] : entry(s.eventsByAge, byAge, ...range)),
    ...entry(s.decisionsStored, f.count(stats.decisions)),
    ...entry(s.storageUsed, snapshot.storageBytes === null ? s.storageUnknown : f.bytes(snapshot.storageBytes)),
    ...entry(s.modelVersion, stats.modelVersion === null ? s.modelNone : f.count(stats.modelVersion)),
    ...entry(s.lastTrained, stats.lastTrainedAt === null ? s.never : f.date(stats.lastTrainedAt)),
  )
  // DESIGN.md §6: when space ran out and old events went, the user is told.
  const notices = [
    ...(stats.eventsDropped > 0 ? [s.eventsDropped(f.count(stats.eventsDropped))] : []),
    ...(stats.eventsExpired > 0 ? [s.eventsExpired(f.count(stats.eventsExpired))] : []),
  ].map((text) => h('p', { class: 'notice' }, text))
  return [dl, ...notices]
}

export function roundsContent(snapshot: PanelSnapshot, s: PanelStrings, f: PanelFormat): Node {
  if (snapshot.rounds.length === 0) return h('p', {}, s.roundsNone)
  // Newest first, like the decisions.
  const rounds = [...snapshot.rounds].reverse()
  return h('ul', { class: 'rounds' }, ...rounds.map((r) => h('li', {}, s.roundEntry(r.roundId, f.date(r.at), f.count(r.elements)))))
}

function decisionItems(decision: DecisionRecord, s: PanelStrings): Node {
  const shown = Math.min(SHOWN_POSITIONS, decision.order.length, decision.reasons.length)
  const items: Node[] = []
  for (let position = 0; position < shown; position++) {
    const candidate = decision.candidates[decision.order[position] ?? -1]
    const reason = decision.reasons[position]
    if (candidate !== undefined && reason !== undefined) items.push(h('li', {}, s.decisionItem(candidate.item, reason.text)))
  }
  return h('ol', {}, ...items)
}

export function decisionsContent(snapshot: PanelSnapshot, s: PanelStrings, f: PanelFormat): Node {
  if (snapshot.decisions.length === 0) return h('p', {}, s.decisionsNone)
  return h(
    'ol',
    { class: 'decisions' },
    ...snapshot.decisions.map((decision) => h('li', {}, h('p', { class: 'when' }, s.decisionAt(f.date(decision.at))), decisionItems(decision, s))),
  )
}
