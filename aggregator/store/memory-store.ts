/**
 * An in-memory {@link AggregatorStore}: nothing survives the process. For tests and for
 * embedding the aggregator where persistence is not wanted. It follows the same contract as the
 * SQLite store (one suite tests both), including copies on the way in and out so that callers
 * cannot mutate stored state.
 */
import { HearthError } from '../../protocol/errors.ts'
import type {
  AggregatorStore,
  ModelRecord,
  ModelVersionRecord,
  NewRound,
  RoundQuery,
  RoundRecord,
} from './store.ts'

export class MemoryStore implements AggregatorStore {
  readonly #models = new Map<string, ModelRecord>()
  readonly #versions = new Map<string, ModelVersionRecord[]>()
  readonly #rounds = new Map<number, RoundRecord>()
  #lastRoundId = 0

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

  async publishRound(round: RoundRecord, version: ModelVersionRecord): Promise<void> {
    if (round.publishedVersion !== version.version || version.roundId !== round.id || version.model !== round.model) {
      throw new RangeError(`round ${round.id} and version ${version.model}@${version.version} do not name each other`)
    }
    const versions = this.#versions.get(version.model)
    if (versions === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', version.model)
    if (versions.some((v) => v.version === version.version)) {
      throw new HearthError('HEARTH_ERR_ROUND_FAILED', `model ${version.model} already has version ${version.version}`)
    }
    if (!this.#rounds.has(round.id)) throw new HearthError('HEARTH_ERR_UNKNOWN_ROUND', `round ${round.id} is not stored`)
    versions.push(copyVersion(version))
    versions.sort((a, b) => a.version - b.version)
    this.#rounds.set(round.id, structuredClone(round))
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

  async close(): Promise<void> {}
}

function copyVersion(version: ModelVersionRecord): ModelVersionRecord {
  return { ...version, weights: version.weights.slice() }
}
