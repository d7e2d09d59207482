/**
 * What the audit log records, built in one place: the entries of admin actions and of round
 * outcomes. Counts, hashes and version numbers only — never an individual update and never a
 * client identity (a round's participants are a number). Entries are appended through the store
 * (`AggregatorStore.appendAudit`); a rollback's entry is written in its version's transaction.
 */
import type { FastifyBaseLogger } from 'fastify'
import { canonicalSha256 } from '../config/round-document.ts'
import type { AggregatorStore, NewAuditEntry, RoundRecord } from '../store/store.ts'
import { SYSTEM_ACTOR } from './actor.ts'

export const AuditAction = {
  modelRollback: 'model.rollback',
  roundCreate: 'round.create',
  roundStart: 'round.start',
  roundStop: 'round.stop',
  roundPublished: 'round.published',
  roundAborted: 'round.aborted',
} as const

/** A rollback: `newVersion` was published with the weights of `toVersion`, over `fromVersion`. */
export interface RollbackChange {
  readonly model: string
  readonly fromVersion: number
  readonly toVersion: number
  readonly newVersion: number
  /** Hex SHA-256 of the weights, equal to `toVersion`'s. */
  readonly sha256: string
}

export function rollbackEntry(actor: string, at: number, change: RollbackChange): NewAuditEntry {
  const { model, ...details } = change
  return { at, actor, action: AuditAction.modelRollback, subject: `model/${model}`, details }
}

/**
 * The entry of an operator's action on round `record` (created, started or stopped through the
 * admin API): `configHash` ties it to the round's outcome entry, `details` adds the particulars.
 */
export function roundActionEntry(
  actor: string,
  at: number,
  action: (typeof AuditAction)['roundCreate' | 'roundStart' | 'roundStop'],
  record: RoundRecord,
  details: Readonly<Record<string, unknown>>,
): NewAuditEntry {
  return {
    at,
    actor,
    action,
    subject: `round/${record.id}`,
    details: { roundId: record.id, model: record.model, configHash: canonicalSha256(record.config), ...details },
  }
}

/** The entry of a finished round; `record.outcome` must be set. */
export function roundOutcomeEntry(record: RoundRecord, at: number): NewAuditEntry {
  const privacy = record.privacy
  return {
    at,
    actor: SYSTEM_ACTOR,
    action: record.outcome === 'published' ? AuditAction.roundPublished : AuditAction.roundAborted,
    subject: `round/${record.id}`,
    details: {
      roundId: record.id,
      model: record.model,
      baseVersion: record.baseVersion,
      configHash: canonicalSha256(record.config),
      participants: record.participants,
      uploads: record.uploadsAccepted,
      dropped: record.dropped,
      outcome: record.outcome,
      reason: record.reason,
      // The accountant's event, and whether it was charged: only a published round spends ε.
      dp:
        privacy === null
          ? null
          : {
              mode: privacy.mode,
              event: privacy.event,
              charged: record.outcome === 'published',
              epsilonBefore: privacy.epsilonBefore,
              epsilonIfPublished: privacy.epsilonIfPublished,
            },
      publishedVersion: record.publishedVersion,
    },
  }
}

/**
 * Appends round outcomes in the background (a round's end must not wait on, or fail with, its
 * audit write) and keeps track of the writes in flight, so shutdown can wait for them before the
 * store closes.
 */
export class RoundAudit {
  readonly #store: AggregatorStore
  readonly #log: FastifyBaseLogger
  readonly #now: () => number
  readonly #pending = new Set<Promise<void>>()

  constructor(store: AggregatorStore, log: FastifyBaseLogger, now: () => number = Date.now) {
    this.#store = store
    this.#log = log
    this.#now = now
  }

  /** Records how `record` ended. */
  roundEnded(record: RoundRecord): void {
    const write = this.#store
      .appendAudit(roundOutcomeEntry(record, this.#now()))
      .then(
        () => undefined,
        (error: unknown) => this.#log.error({ err: error, roundId: record.id }, 'could not append the round outcome to the audit log'),
      )
      .finally(() => this.#pending.delete(write))
    this.#pending.add(write)
  }

  /** Resolves once every outcome recorded so far is written (or its failure logged). */
  async settled(): Promise<void> {
    await Promise.all([...this.#pending])
  }
}
