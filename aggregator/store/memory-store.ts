/**
 * An in-memory {@link AggregatorStore}: nothing survives the process. For tests and for
 * embedding the aggregator where persistence is not wanted. It follows the same contract as the
 * SQL stores (one suite tests them all), including copies on the way in and out so that callers
 * cannot mutate stored state.
 */
import { HearthError } from '../../protocol/errors.ts'
import { checkPublish, checkRoundless } from './checks.ts'
import type {
  AggregatorStore,
  AuditEntry,
  AuditQuery,
  LedgerEntry,
  ModelPrivacyState,
  ModelRecord,
  ModelVersionRecord,
  ModelVersionSummary,
  NewAuditEntry,
  NewRound,
  OptimizerStateRecord,
  PrivacyCommit,
  RoundQuery,
  RoundRecord,
  VersionQuery,
} from './store.ts'

export class MemoryStore implements AggregatorStore {
  readonly #models = new Map<string, ModelRecord>()
  readonly #versions = new Map<string, ModelVersionRecord[]>()
  readonly #rounds = new Map<number, RoundRecord>()
  readonly #ledger: LedgerEntry[] = []
  readonly #privacy = new Map<string, ModelPrivacyState>()
  readonly #audit: AuditEntry[] = []
  /** Optimizer states by `model\nversion`. */
  readonly #optimizer = new Map<string, OptimizerStateRecord>()
  #lastRoundId = 0
  #lastLedgerId = 0

  async getModel(name: string): Promise<ModelRecord | undefined> {
    const model = this.#models.get(name)
    return model === undefined ? undefined : structuredClone(model)
  }

  async createModel(model: ModelRecord, initial: ModelVersionRecord): Promise<void> {
    if (initial.model !== model.name) throw new RangeError(`initial version belongs to ${initial.model}, not ${model.name}`)
    if (this.#models.has(model.name)) throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `model ${model.name} already exists`)
    this.#models.set(model.name, structuredClone(model))
    this.#versions.set(model.name, [copyVersion(initial)])
  }

  async latestVersion(model: string): Promise<ModelVersionRecord | undefined> {
    const versions = this.#versions.get(model)
    const latest = versions?.[versions.length - 1]
    return latest === undefined ? undefined : copyVersion(latest)
  }

  async getVersion(model: string, version: number): Promise<ModelVersionRecord | undefined> {
    const found = this.#versions.get(model)?.find((v) => v.version === version)
    return found === undefined ? undefined : copyVersion(found)
  }

  async listVersions(query: VersionQuery): Promise<ModelVersionSummary[]> {
    return (this.#versions.get(query.model) ?? [])
      .filter((v) => query.before === undefined || v.version < query.before)
      .sort((a, b) => b.version - a.version)
      .slice(0, query.limit)
      .map(({ weights: _weights, ...summary }) => summary)
  }

  async publishVersion(version: ModelVersionRecord, audit: NewAuditEntry): Promise<AuditEntry> {
    checkRoundless(version)
    const versions = this.#versions.get(version.model)
    if (versions === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', version.model)
    if (versions.some((v) => v.version === version.version)) {
      throw new HearthError('HEARTH_ERR_ROUND_FAILED', `model ${version.model} already has version ${version.version}`)
    }
    // Cloned before any write: an entry that cannot be stored must not leave the version behind.
    const entry = structuredClone(audit)
    versions.push(copyVersion(version))
    versions.sort((a, b) => a.version - b.version)
    return this.appendAudit(entry)
  }

  async createRound(round: NewRound): Promise<RoundRecord> {
    if (!this.#models.has(round.model)) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', round.model)
    const record: RoundRecord = { ...structuredClone(round), id: ++this.#lastRoundId }
    this.#rounds.set(record.id, record)
    return structuredClone(record)
  }

  async updateRound(round: RoundRecord): Promise<void> {
    if (!this.#rounds.has(round.id)) throw new HearthError('HEARTH_ERR_UNKNOWN_ROUND', `round ${round.id} is not stored`)
    this.#rounds.set(round.id, structuredClone(round))
  }

  async publishRound(round: RoundRecord, version: ModelVersionRecord, privacy?: PrivacyCommit, optimizer?: OptimizerStateRecord): Promise<void> {
    checkPublish(round, version, privacy, optimizer)
    const versions = this.#versions.get(version.model)
    if (versions === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', version.model)
    if (versions.some((v) => v.version === version.version)) {
      throw new HearthError('HEARTH_ERR_ROUND_FAILED', `model ${version.model} already has version ${version.version}`)
    }
    if (!this.#rounds.has(round.id)) throw new HearthError('HEARTH_ERR_UNKNOWN_ROUND', `round ${round.id} is not stored`)
    if (privacy !== undefined && this.#ledger.some((e) => e.roundId === round.id)) {
      throw new HearthError('HEARTH_ERR_ROUND_FAILED', `the ledger already holds round ${round.id}`)
    }
    // Every check passed: the writes below cannot fail, so the publish is all or nothing.
    versions.push(copyVersion(version))
    versions.sort((a, b) => a.version - b.version)
    this.#rounds.set(round.id, structuredClone(round))
    if (privacy !== undefined) {
      this.#ledger.push({ ...structuredClone(privacy.entry), id: ++this.#lastLedgerId })
      this.#privacy.set(privacy.state.model, structuredClone(privacy.state))
    }
    if (optimizer !== undefined) this.#optimizer.set(stateKey(optimizer.model, optimizer.version), structuredClone(optimizer))
  }

  async getOptimizerState(model: string, version: number): Promise<OptimizerStateRecord | undefined> {
    const state = this.#optimizer.get(stateKey(model, version))
    return state === undefined ? undefined : structuredClone(state)
  }

  async getRound(id: number): Promise<RoundRecord | undefined> {
    const round = this.#rounds.get(id)
    return round === undefined ? undefined : structuredClone(round)
  }

  async listRounds(query: RoundQuery): Promise<RoundRecord[]> {
    return [...this.#rounds.values()]
      .filter((r) => (query.model === undefined || r.model === query.model) && (query.before === undefined || r.id < query.before))
      .sort((a, b) => b.id - a.id)
      .slice(0, query.limit)
      .map((r) => structuredClone(r))
  }

  async lastRoundId(): Promise<number> {
    return this.#lastRoundId
  }

  async abortUnfinishedRounds(reason: string, at: number): Promise<number[]> {
    const ids: number[] = []
    for (const round of this.#rounds.values()) {
      if (round.outcome !== null) continue
      this.#rounds.set(round.id, { ...round, outcome: 'aborted', stage: 'done', reason, closedAt: at })
      ids.push(round.id)
    }
    return ids.sort((a, b) => a - b)
  }

  async listLedger(model: string): Promise<LedgerEntry[]> {
    return this.#ledger.filter((e) => e.model === model).map((e) => structuredClone(e))
  }

  async getPrivacyState(model: string): Promise<ModelPrivacyState | undefined> {
    const state = this.#privacy.get(model)
    return state === undefined ? undefined : structuredClone(state)
  }

  async setPrivacyState(state: ModelPrivacyState): Promise<void> {
    if (!this.#models.has(state.model)) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', state.model)
    this.#privacy.set(state.model, structuredClone(state))
  }

  async appendAudit(entry: NewAuditEntry): Promise<AuditEntry> {
    const stored: AuditEntry = { ...structuredClone(entry), id: this.#audit.length + 1 }
    this.#audit.push(stored)
    return structuredClone(stored)
  }

  async listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    const below = query.before === undefined ? this.#audit : this.#audit.slice(0, Math.max(0, query.before - 1))
    return below
      .slice(-query.limit)
      .reverse()
      .map((e) => structuredClone(e))
  }

  async close(): Promise<void> {}
}

function stateKey(model: string, version: number): string {
  return `${model}\n${version}`
}

function copyVersion(version: ModelVersionRecord): ModelVersionRecord {
  return { ...version, weights: version.weights.slice() }
}
