/**
 * Large cohorts: split a round's clients into groups of bounded size, run secure aggregation in
 * each, and add the group sums (DESIGN.md §4; Bonawitz et al. CCS 2017 §7 and Bell et al. CCS
 * 2020 §1 note the same sharding for scale). Every group sum is already the aggregate of at
 * least t clients of that group, so adding them reveals nothing the server was not meant to
 * see; a group that fell below t contributes nothing and the report says so.
 */
import type { HearthError } from '../errors.ts'
import { secureRandomInt } from './graph.ts'

/**
 * Splits `clients` into ⌈N / maxGroupSize⌉ groups whose sizes differ by at most one, after a
 * uniformly random shuffle (CSPRNG, Fisher–Yates) so that no one chooses who shares a group.
 */
export function splitIntoGroups<T>(clients: readonly T[], maxGroupSize: number, randomInt: (bound: number) => number = secureRandomInt): T[][] {
  if (!Number.isInteger(maxGroupSize) || maxGroupSize < 3) throw new RangeError(`maxGroupSize must be an integer >= 3, got ${maxGroupSize}`)
  const n = clients.length
  if (n < 3) throw new RangeError(`a round needs at least 3 clients, got ${n}`)
  const shuffled = [...clients]
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(i + 1)
    const tmp = shuffled[i] as T
    shuffled[i] = shuffled[j] as T
    shuffled[j] = tmp
  }
  const count = Math.ceil(n / maxGroupSize)
  const groups: T[][] = []
  let offset = 0
  for (let g = 0; g < count; g++) {
    const size = Math.floor(n / count) + (g < n % count ? 1 : 0)
    groups.push(shuffled.slice(offset, offset + size))
    offset += size
  }
  return groups
}

/** How one group ended, as the round's master sees it. */
export interface GroupOutcome {
  readonly groupId: number
  /** Clients planned in the group. */
  readonly clients: number
  /** The group sum in Z_{2^b} when it completed. */
  readonly sum?: Uint32Array
  /** Clients whose inputs are in `sum`. */
  readonly survivors?: number
  /** Why it did not complete. */
  readonly error?: HearthError
}

/** The report of one group in a combined round. */
export interface GroupReport {
  readonly groupId: number
  readonly clients: number
  readonly survivors: number
  readonly contributed: boolean
  readonly reason?: string
}

/** The sum over all groups that completed. */
export interface CombinedSum {
  /** Σ of the quantized inputs, as exact integers (each group sum is < 2^32; the total < 2^53). */
  readonly sum: Float64Array
  /** Clients whose inputs are in `sum`. */
  readonly contributors: number
  readonly groups: readonly GroupReport[]
}

/** Adds the sums of the groups that completed; reports every group. */
export function combineGroupSums(outcomes: readonly GroupOutcome[], vectorLength: number): CombinedSum {
  if (!Number.isInteger(vectorLength) || vectorLength < 1) throw new RangeError(`vectorLength must be a positive integer, got ${vectorLength}`)
  const sum = new Float64Array(vectorLength)
  let contributors = 0
  const groups: GroupReport[] = outcomes.map((o) => {
    if (o.sum === undefined || o.survivors === undefined) {
      return { groupId: o.groupId, clients: o.clients, survivors: 0, contributed: false, reason: o.error?.message ?? 'did not complete' }
    }
    if (o.sum.length !== vectorLength) throw new RangeError(`group ${o.groupId} sum has ${o.sum.length} elements, expected ${vectorLength}`)
    for (let i = 0; i < vectorLength; i++) sum[i] = (sum[i] as number) + (o.sum[i] as number)
    contributors += o.survivors
    return { groupId: o.groupId, clients: o.clients, survivors: o.survivors, contributed: true }
  })
  return { sum, contributors, groups }
}
