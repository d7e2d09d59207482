/**
 * The communication graph of a group: who shares masks and Shamir shares with whom.
 *
 * SecAgg+ (Bell et al. CCS 2020, §3.2 and §4.2) uses a random k-regular graph; like Google's
 * federated-compute we take the Harary graph H(n, k) — clients on a ring, each joined to the k/2
 * nearest on either side — under a uniformly random relabelling chosen by the server with the
 * platform CSPRNG (`params.ts` explains why this graph and which k). Plain SecAgg (Bonawitz et
 * al. CCS 2017) is the complete graph. Client indices are 1..n: they are also the Shamir
 * x-coordinates, so 0 is never an index.
 */
import { randomWords } from './webcrypto.ts'

/** Who is adjacent to whom among clients 1..size. */
export interface CommunicationGraph {
  readonly size: number
  /** Neighbours per client (n − 1 when complete). */
  readonly degree: number
  readonly complete: boolean
  /** Client `index`'s neighbours, ascending. */
  neighbours(index: number): readonly number[]
  /** True when u and v are distinct neighbours. */
  adjacent(u: number, v: number): boolean
}

/** The complete graph on clients 1..n (plain SecAgg). Lists are built on demand, O(n) each. */
export function completeGraph(n: number): CommunicationGraph {
  assertSize(n, n - 1)
  const inRange = (i: number): boolean => Number.isInteger(i) && i >= 1 && i <= n
  return {
    size: n,
    degree: n - 1,
    complete: true,
    neighbours(index) {
      if (!inRange(index)) throw new RangeError(`client index must be in [1, ${n}], got ${index}`)
      const list: number[] = []
      for (let j = 1; j <= n; j++) if (j !== index) list.push(j)
      return list
    },
    adjacent: (u, v) => u !== v && inRange(u) && inRange(v),
  }
}

/**
 * A randomly relabelled Harary graph H(n, k), k even and 2 <= k < n - 1. `randomInt` defaults to
 * the CSPRNG; tests may pass a seeded one to reproduce a graph.
 */
export function hararyGraph(n: number, k: number, randomInt: (bound: number) => number = secureRandomInt): CommunicationGraph {
  assertSize(n, k)
  if (k % 2 !== 0 || k < 2 || k >= n - 1) throw new RangeError(`degree k must be even and in [2, n - 2], got ${k} for n=${n}`)
  // Fisher–Yates shuffle of the ring positions (Knuth, TAOCP vol. 2, §3.4.2, Algorithm P).
  const ring = Array.from({ length: n }, (_, i) => i + 1)
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(i + 1)
    const tmp = ring[i] as number
    ring[i] = ring[j] as number
    ring[j] = tmp
  }
  const lists: number[][] = Array.from({ length: n }, () => [])
  for (let p = 0; p < n; p++) {
    const list = lists[(ring[p] as number) - 1] as number[]
    for (let d = 1; d <= k / 2; d++) list.push(ring[(p + d) % n] as number, ring[(p - d + n) % n] as number)
    list.sort((a, b) => a - b)
  }
  const sets = lists.map((l) => new Set(l))
  return {
    size: n,
    degree: k,
    complete: false,
    neighbours(index) {
      const list = lists[index - 1]
      if (list === undefined) throw new RangeError(`client index must be in [1, ${n}], got ${index}`)
      return list
    },
    adjacent: (u, v) => sets[u - 1]?.has(v) === true,
  }
}

/** Builds the graph for derived parameters: complete when `degree` is n - 1, else Harary. */
export function buildGraph(n: number, degree: number): CommunicationGraph {
  return degree === n - 1 ? completeGraph(n) : hararyGraph(n, degree)
}

/** A uniform integer in [0, bound) from the CSPRNG, by rejection sampling (no modulo bias). */
export function secureRandomInt(bound: number): number {
  if (!Number.isInteger(bound) || bound < 1 || bound > 2 ** 32) throw new RangeError(`bound must be an integer in [1, 2^32], got ${bound}`)
  const limit = 2 ** 32 - (2 ** 32 % bound)
  for (;;) {
    const w = randomWords(1)[0] as number
    if (w < limit) return w % bound
  }
}

function assertSize(n: number, k: number): void {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`group size n must be an integer >= 2, got ${n}`)
  if (!Number.isInteger(k)) throw new RangeError(`degree k must be an integer, got ${k}`)
}
