/**
 * The models the aggregator serves and their versions: creates a configured model on first
 * start (version 1 from its spec's initializers), keeps each model's latest version in memory,
 * encodes versions as Weights frames for HTTP, and publishes new versions through the store.
 */
import { isDeepStrictEqual } from 'node:util'
import type { FastifyBaseLogger } from 'fastify'
import { HearthError } from '../../protocol/errors.ts'
import { encodeFrame, FrameKind } from '../../protocol/frames.ts'
import { assertFitsSpec, federatedLength, initFederatedWeights } from '../../protocol/model-spec.ts'
import type { ModelSpec, UniformSource } from '../../protocol/model-spec.ts'
import type { AggregatorStore, AuditEntry, ModelVersionRecord, NewAuditEntry, OptimizerStateRecord, PrivacyCommit, RoundRecord } from '../store/store.ts'
import { sha256Hex, versionRecord, weightsToBytes } from './weights.ts'

/** A model as served: its spec and the length of its federated vector. */
export interface ServedModel {
  readonly name: string
  readonly spec: ModelSpec
  readonly vectorLength: number
}

/** A model version encoded for HTTP. */
export interface WeightsRepresentation {
  readonly version: number
  /** A Weights frame (`protocol/frames.ts`) with id = version. */
  readonly bytes: Uint8Array
  /**
   * Strong entity tag (RFC 9110 §8.8.3). The frame is a function of (version, weights) only, so
   * the version and the weights' SHA-256 identify the bytes exactly.
   */
  readonly etag: string
}

export interface RegistryOptions {
  readonly store: AggregatorStore
  readonly models: readonly { readonly name: string; readonly spec: ModelSpec }[]
  /** Source for initial weights. */
  readonly uniform: UniformSource
  readonly now: () => number
  readonly log: FastifyBaseLogger
}

interface Entry {
  readonly model: ServedModel
  latest: ModelVersionRecord
  latestWeights: WeightsRepresentation
}

/** Numbered versions are immutable, so a few recent ones are kept encoded. */
const CACHED_VERSIONS = 8

export class ModelRegistry {
  readonly #store: AggregatorStore
  readonly #entries: Map<string, Entry>
  readonly #cache = new Map<string, WeightsRepresentation>()

  private constructor(store: AggregatorStore, entries: Map<string, Entry>) {
    this.#store = store
    this.#entries = entries
  }

  /**
   * Loads the configured models, creating any that the store lacks. Refuses to serve a stored
   * model under a changed spec (`HEARTH_ERR_INVALID_CONFIG`): its versions would not fit.
   */
  static async open(options: RegistryOptions): Promise<ModelRegistry> {
    const { store, log } = options
    const entries = new Map<string, Entry>()
    for (const { name, spec } of options.models) {
      const model: ServedModel = { name, spec, vectorLength: federatedLength(spec) }
      let stored = await store.getModel(name)
      let latest: ModelVersionRecord | undefined
      if (stored === undefined) {
        const now = options.now()
        latest = versionRecord(name, 1, initFederatedWeights(spec, options.uniform), null, now)
        try {
          await store.createModel({ name, spec, createdAt: now }, latest)
          log.info({ model: name, vectorLength: model.vectorLength }, 'created model with initial weights')
        } catch (error) {
          // Another process sharing the store created it meanwhile (replicas starting together):
          // serve theirs, checked like any stored model.
          stored = await store.getModel(name)
          if (stored === undefined) throw error
        }
      }
      if (stored !== undefined) {
        if (!isDeepStrictEqual(stored.spec, spec)) {
          throw new HearthError(
            'HEARTH_ERR_INVALID_CONFIG',
            `model ${name} is stored with different options ${JSON.stringify(stored.spec.options)}; serve the new options under a new name`,
          )
        }
        latest = await store.latestVersion(name)
      }
      if (latest === undefined) throw new HearthError('HEARTH_ERR_STORAGE', `model ${name} has no version`)
      checkVersion(model, latest)
      entries.set(name, { model, latest, latestWeights: represent(latest) })
    }
    return new ModelRegistry(store, entries)
  }

  /** Names of the served models. */
  names(): string[] {
    return [...this.#entries.keys()]
  }

  /** The served model `name`; throws `HEARTH_ERR_UNKNOWN_MODEL`. */
  model(name: string): ServedModel {
    return this.#entry(name).model
  }

  has(name: string): boolean {
    return this.#entries.has(name)
  }

  /** The largest federated vector over all models, in elements. */
  largestVectorLength(): number {
    return Math.max(0, ...[...this.#entries.values()].map((e) => e.model.vectorLength))
  }

  /** The latest version of `name`. Callers must not modify the weights. */
  latest(name: string): ModelVersionRecord {
    return this.#entry(name).latest
  }

  /** The latest version of `name`, encoded. */
  latestWeights(name: string): WeightsRepresentation {
    return this.#entry(name).latestWeights
  }

  /** Version `version` of `name`, encoded; throws `HEARTH_ERR_UNKNOWN_VERSION`. */
  async weights(name: string, version: number): Promise<WeightsRepresentation> {
    const entry = this.#entry(name)
    if (version === entry.latest.version) return entry.latestWeights
    const key = `${name}@${version}`
    const cached = this.#cache.get(key)
    if (cached !== undefined) {
      // Refresh its place: Map iteration order is insertion order, so the first key is the LRU.
      this.#cache.delete(key)
      this.#cache.set(key, cached)
      return cached
    }
    const stored = version >= 1 && version < entry.latest.version ? await this.#store.getVersion(name, version) : undefined
    if (stored === undefined) {
      throw new HearthError('HEARTH_ERR_UNKNOWN_VERSION', `model ${name} has versions 1 to ${entry.latest.version}, not ${version}`)
    }
    checkVersion(entry.model, stored)
    const representation = represent(stored)
    this.#cache.set(key, representation)
    if (this.#cache.size > CACHED_VERSIONS) this.#cache.delete(this.#cache.keys().next().value as string)
    return representation
  }

  /**
   * Stores `version` together with the `round` that produced it (and, for a DP round, its
   * ledger entry, and for a stateful optimizer its state), then makes it the latest. `version`
   * must directly follow the current latest version.
   */
  async publish(round: RoundRecord, version: ModelVersionRecord, privacy?: PrivacyCommit, optimizer?: OptimizerStateRecord): Promise<void> {
    const entry = this.#entry(version.model)
    if (version.version !== entry.latest.version + 1) {
      throw new HearthError(
        'HEARTH_ERR_ROUND_FAILED',
        `version ${version.version} does not follow the latest version ${entry.latest.version} of ${version.model}`,
      )
    }
    checkVersion(entry.model, version)
    await this.#store.publishRound(round, version, privacy, optimizer)
    entry.latest = version
    entry.latestWeights = represent(version)
  }

  /**
   * Reads the latest version of `name` from the store and serves it if it is newer than the one
   * held: another process sharing the store published it (a cluster replica, `aggregator/cluster`).
   * Returns the version now served.
   */
  async refresh(name: string): Promise<number> {
    const entry = this.#entry(name)
    const stored = await this.#store.latestVersion(name)
    // Read after the await: a newer version may have been published here meanwhile.
    if (stored !== undefined && stored.version > entry.latest.version) {
      checkVersion(entry.model, stored)
      entry.latest = stored
      entry.latestWeights = represent(stored)
    }
    return entry.latest.version
  }

  /**
   * Rolls `name` back to `toVersion` by publishing a new version with its weights, so versions
   * stay monotonic and clients and ETag caches move forward. The version and the audit entry
   * `describe` builds are written in one transaction; the new version is served at once.
   * Throws `HEARTH_ERR_UNKNOWN_MODEL`, `HEARTH_ERR_UNKNOWN_VERSION`, and
   * `HEARTH_ERR_INVALID_ARGUMENT` for the latest version itself (nothing to roll back).
   */
  async rollback(
    name: string,
    toVersion: number,
    now: number,
    describe: (change: { readonly fromVersion: number; readonly newVersion: number; readonly sha256: string }) => NewAuditEntry,
  ): Promise<{ readonly version: ModelVersionRecord; readonly audit: AuditEntry }> {
    const entry = this.#entry(name)
    if (toVersion === entry.latest.version) {
      throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', `version ${toVersion} is already the latest of ${name}`)
    }
    const target = toVersion >= 1 && toVersion < entry.latest.version ? await this.#store.getVersion(name, toVersion) : undefined
    if (target === undefined) {
      throw new HearthError('HEARTH_ERR_UNKNOWN_VERSION', `model ${name} has versions 1 to ${entry.latest.version}, not ${toVersion}`)
    }
    checkVersion(entry.model, target)
    // Read after the await: a round may have published meanwhile. If one publishes during the
    // write below, the store refuses the second claim on the number.
    const fromVersion = entry.latest.version
    const version = versionRecord(name, fromVersion + 1, target.weights, null, now)
    const audit = await this.#store.publishVersion(version, describe({ fromVersion, newVersion: version.version, sha256: version.sha256 }))
    entry.latest = version
    entry.latestWeights = represent(version)
    return { version, audit }
  }

  #entry(name: string): Entry {
    const entry = this.#entries.get(name)
    if (entry === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', `no model named ${JSON.stringify(name)}`)
    return entry
  }
}

function checkVersion(model: ServedModel, version: ModelVersionRecord): void {
  assertFitsSpec(model.spec, version.weights)
  if (sha256Hex(weightsToBytes(version.weights)) !== version.sha256) {
    throw new HearthError('HEARTH_ERR_STORAGE', `version ${version.version} of model ${model.name} does not match its SHA-256`)
  }
}

function represent(version: ModelVersionRecord): WeightsRepresentation {
  return {
    version: version.version,
    bytes: encodeFrame({ kind: FrameKind.Weights, id: version.version, values: version.weights }),
    etag: `"v${version.version}-${version.sha256}"`,
  }
}
