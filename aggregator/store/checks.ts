/** Argument checks shared by the store implementations, so both refuse the same calls. */
import type { ModelVersionRecord, OptimizerStateRecord, PrivacyCommit, RoundRecord } from './store.ts'

/**
 * The checks both stores make before publishing: the round, the version and the ledger entry
 * must name each other.
 */
export function checkPublish(
  round: RoundRecord,
  version: ModelVersionRecord,
  privacy: PrivacyCommit | undefined,
  optimizer?: OptimizerStateRecord,
): void {
  if (round.publishedVersion !== version.version || version.roundId !== round.id || version.model !== round.model) {
    throw new RangeError(`round ${round.id} and version ${version.model}@${version.version} do not name each other`)
  }
  if (optimizer !== undefined) {
    if (optimizer.model !== version.model || optimizer.version !== version.version) {
      throw new RangeError(`the optimizer state of ${optimizer.model}@${optimizer.version} does not name version ${version.model}@${version.version}`)
    }
    if (optimizer.m.length !== version.weights.length || optimizer.v.length !== version.weights.length) {
      throw new RangeError(`the optimizer state has ${optimizer.m.length} and ${optimizer.v.length} moments for ${version.weights.length} weights`)
    }
  }
  if (privacy === undefined) return
  const { entry, state } = privacy
  if (entry.roundId !== round.id || entry.version !== version.version || entry.model !== round.model || state.model !== round.model) {
    throw new RangeError(`the ledger entry of round ${entry.roundId} (${entry.model}@${entry.version}) does not name round ${round.id}`)
  }
}

/** The check both stores make before `publishVersion`: no round may be named. */
export function checkRoundless(version: ModelVersionRecord): void {
  if (version.roundId !== null) {
    throw new RangeError(`version ${version.model}@${version.version} names round ${version.roundId}; publish it with publishRound`)
  }
}
