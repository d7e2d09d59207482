/**
 * Derivation of the secure-aggregation parameters: the degree k of the communication graph and
 * the Shamir threshold t, from the group size n, the expected dropout rate δ, the tolerated
 * fraction γ of corrupt clients and two stated probabilities. Nothing here is hand-set.
 *
 * The method follows Bell, Bonawitz, Gascón, Lepoint, Raykova, "Secure Single-Server Aggregation
 * with (Poly)Logarithmic Overhead", CCS 2020 (SecAgg+), §3.2 and §4 (Theorems 3.6 and 4.9), in the
 * form of Google federated-compute's Harary-graph parameter finder:
 *
 * The graph is a Harary graph H(n, k) (each client on a ring, connected to the k/2 clients on
 * each side) whose nodes are randomly permuted by the server (`graph.ts`). For k = 2, 4, 6, ...
 * (smallest first, since the cost per client is linear in k) we accept k with threshold t when
 * the following three bad events are unlikely enough:
 *
 * 1. **Disconnection** (security). If dropouts and corrupt clients cut the ring of honest
 *    survivors in two, the server learns the sums of two parts separately. Cutting H(n, k) needs
 *    k/2 consecutive bad nodes in two disjoint places: n (n − k − 1) / 2 such pairs of gaps, each
 *    entirely bad with probability (B)_k / (n)_k when B = ⌊γn⌋ + ⌊δn⌋ of the n nodes are bad
 *    (falling factorials; union bound). We require this to be < 2^−(σ+1).
 *
 * 2. **Too many corrupt neighbours** (security). The number c of corrupt neighbours of a client
 *    is hypergeometric: k draws from the n − 1 others, of which A = ⌊γn⌋ are corrupt. With
 *    t1 = min { a : Pr[c > a] ≤ 2^−(σ+1) / n }, any t > t1 keeps every client's secrets out of
 *    reach of the corrupt clients, for all n clients at once (union bound), except with
 *    probability 2^−(σ+1). The two security events together fail with probability ≤ 2^−σ.
 *
 * 3. **Too few surviving neighbours** (correctness). The number s of surviving neighbours is
 *    hypergeometric: k draws from n − 1 others of which at least n − ⌊δn⌋ − 1 survive. With
 *    t2 = max { s : Pr[s' < s] ≤ 2^−η / n }, any t ≤ t2 leaves every client with t share holders,
 *    so the round completes except with probability 2^−η.
 *
 * Then t = max(2, t1 + 1), and k is accepted when t ≤ t2. Against a **semi-malicious** server,
 * which may tell some neighbours that a client dropped and others that it survived, the honest
 * share holders (at most k − c neighbours plus the client itself) must not split into two sets
 * that each reach t with the c corrupt ones: 2(t − c) > k + 1 − c, i.e. t ≥ ⌊(k + 1 + c) / 2⌋ + 1
 * (Bell et al. §4.3; Bonawitz et al. CCS 2017 §6.3 make the same argument for t > n/2 on the
 * complete graph). The optional consistency check (`messages.ts`) addresses the same attack.
 *
 * The complete graph (plain SecAgg of Bonawitz et al. 2017) is the case k = n − 1: both counts
 * are then exact (c = A, s = n − ⌊δn⌋ − 1), so t = A + 1 (honest-but-curious) and the round
 * completes while t clients remain. SecAgg+ falls back to it when no sparser graph qualifies
 * (small groups).
 */
import { HearthError } from '../errors.ts'

/** Which variant of secure aggregation a group runs. */
export const SecAggMode = {
  /** Bonawitz et al. CCS 2017: every pair of clients shares a mask (complete graph). */
  SecAgg: 'secagg',
  /** Bell et al. CCS 2020: masks and shares only along a sparse k-regular graph. */
  SecAggPlus: 'secagg+',
} as const
export type SecAggMode = (typeof SecAggMode)[keyof typeof SecAggMode]

/** What the server is assumed to do beyond following the protocol. */
export const ServerModel = {
  /** Follows the protocol, tries to learn from what it sees (DESIGN.md §3). */
  HonestButCurious: 'honest-but-curious',
  /** May also lie about which clients dropped out. */
  SemiMalicious: 'semi-malicious',
} as const
export type ServerModel = (typeof ServerModel)[keyof typeof ServerModel]

/** The requirements that the parameters are derived from. */
export interface SecurityRequirements {
  /** Clients in the group, n. */
  readonly groupSize: number
  /** Expected fraction of clients that drop out over the whole round, δ in [0, 1). */
  readonly expectedDropout: number
  /** Tolerated fraction of clients colluding with the server, γ in [0, 1). Default 0.05. */
  readonly corruptFraction?: number
  /** σ: the server learns more than the sum with probability at most 2^−σ. Default 40. */
  readonly securityBits?: number
  /** η: the round fails for want of shares with probability at most 2^−η. Default 20. */
  readonly correctnessBits?: number
  /** Default honest-but-curious. */
  readonly serverModel?: ServerModel
}

/** Derived parameters of one group. */
export interface SecAggParameters {
  readonly mode: SecAggMode
  readonly groupSize: number
  /** Neighbours per client: k of the Harary graph, or n − 1 for the complete graph. */
  readonly degree: number
  /** Shamir threshold t: shares needed to reconstruct a secret, and the minimum survivors. */
  readonly threshold: number
  /** True when the graph is complete (plain SecAgg, or SecAgg+ falling back on a small group). */
  readonly complete: boolean
  readonly requirements: Required<SecurityRequirements>
  /** The bounds the choice rests on, for logs and the dashboard. */
  readonly bounds: {
    /** t1: corrupt neighbours exceed this with probability ≤ 2^−(σ+1)/n. */
    readonly corruptNeighbours: number
    /** t2: surviving neighbours fall below this with probability ≤ 2^−η/n. */
    readonly survivingNeighbours: number
    /** log2 of the bound on the probability that honest survivors are disconnected. */
    readonly log2Disconnection: number
  }
}

const DEFAULTS = {
  corruptFraction: 0.05,
  securityBits: 40,
  correctnessBits: 20,
  serverModel: ServerModel.HonestButCurious,
} as const

/** Largest group the derivation accepts (the Shamir field holds x-coordinates up to 2^24). */
export const MAX_GROUP_SIZE = 1_000_000
// Guards floor() against floating-point error in γn and δn (rounding towards more bad clients).
const SMALL = 1e-9

/**
 * Derives the graph degree k and the threshold t for one group (see the module comment for the
 * derivation). Throws `RangeError` for arguments out of their domain and
 * `HEARTH_ERR_INVALID_CONFIG` when no parameters meet the requirements.
 */
export function deriveParameters(mode: SecAggMode, requirements: SecurityRequirements): SecAggParameters {
  const req = { ...DEFAULTS, ...requirements }
  const n = req.groupSize
  if (!Number.isInteger(n) || n < 3 || n > MAX_GROUP_SIZE) {
    throw new RangeError(`groupSize must be an integer in [3, ${MAX_GROUP_SIZE}], got ${n}`)
  }
  for (const [name, value] of [['expectedDropout', req.expectedDropout], ['corruptFraction', req.corruptFraction]] as const) {
    if (!(value >= 0 && value < 1)) throw new RangeError(`${name} must be in [0, 1), got ${value}`)
  }
  for (const [name, value] of [['securityBits', req.securityBits], ['correctnessBits', req.correctnessBits]] as const) {
    if (!(value > 0 && value <= 256)) throw new RangeError(`${name} must be in (0, 256], got ${value}`)
  }
  if (mode !== SecAggMode.SecAgg && mode !== SecAggMode.SecAggPlus) throw new RangeError(`mode must be secagg or secagg+, got ${String(mode)}`)

  const corrupt = Math.floor(req.corruptFraction * n + SMALL)
  const dropped = Math.floor(req.expectedDropout * n + SMALL)
  const degrees: number[] = []
  if (mode === SecAggMode.SecAggPlus) for (let k = 2; k < n - 1; k += 2) degrees.push(k)
  degrees.push(n - 1)
  for (const k of degrees) {
    const found = checkDegree(n, k, corrupt, dropped, req)
    if (found !== undefined) {
      return { mode, groupSize: n, degree: k, complete: k === n - 1, requirements: req, ...found }
    }
  }
  throw new HearthError(
    'HEARTH_ERR_INVALID_CONFIG',
    `no secure-aggregation parameters for n=${n}, dropout ${req.expectedDropout}, corrupt ${req.corruptFraction}: ` +
      `at most ${n - dropped} survivors cannot outnumber ${corrupt} corrupt clients with 2^-${req.securityBits} security`,
  )
}

function checkDegree(
  n: number,
  k: number,
  corrupt: number,
  dropped: number,
  req: Required<SecurityRequirements>,
): Pick<SecAggParameters, 'threshold' | 'bounds'> | undefined {
  const perEvent = req.securityBits + 1
  // Event 1: disconnection of the honest survivors (only for a sparse graph).
  const log2Disconnection = k === n - 1 ? -Infinity : log2DisconnectionBound(n, k, corrupt + dropped)
  if (log2Disconnection >= -perEvent) return undefined
  // Event 2: t1 bounds the corrupt neighbours of every client (Hypergeometric(n-1, A, k)).
  const t1 = upperQuantile(n - 1, corrupt, k, 2 ** -perEvent / n)
  // Event 3: t2 bounds the surviving neighbours from below (Hypergeometric(n-1, n-D-1, k)).
  const t2 = lowerQuantile(n - 1, n - dropped - 1, k, 2 ** -req.correctnessBits / n)
  let t = Math.max(2, t1 + 1)
  if (req.serverModel === ServerModel.SemiMalicious) t = Math.max(t, Math.floor((k + 1 + t1) / 2) + 1)
  if (t > t2) return undefined
  return { threshold: t, bounds: { corruptNeighbours: t1, survivingNeighbours: t2, log2Disconnection } }
}

/**
 * log2 of the union bound on Pr[H(n, k) minus B random bad nodes is disconnected]: the number of
 * pairs of disjoint gaps, n (n − k − 1) / 2, times Pr[k given nodes are all bad] = (B)_k / (n)_k.
 */
export function log2DisconnectionBound(n: number, k: number, bad: number): number {
  if (k > bad) return -Infinity
  const ln =
    Math.log(n) + Math.log(n - k - 1) - Math.LN2 + logFactorial(bad) - logFactorial(bad - k) + logFactorial(n - k) - logFactorial(n)
  return ln / Math.LN2
}

/** Hypergeometric pmf: x marked among `draws` taken from `total` of which `marked` are marked. */
export function hypergeometricPmf(total: number, marked: number, draws: number, x: number): number {
  if (x < 0 || x > draws || x > marked || draws - x > total - marked) return 0
  return Math.exp(logChoose(marked, x) + logChoose(total - marked, draws - x) - logChoose(total, draws))
}

/** Smallest a with Pr[X > a] ≤ epsilon, X hypergeometric. */
export function upperQuantile(total: number, marked: number, draws: number, epsilon: number): number {
  let a = draws
  let tail = 0 // Pr[X > a]
  while (a > 0) {
    const next = tail + hypergeometricPmf(total, marked, draws, a)
    if (next > epsilon) break
    tail = next
    a--
  }
  return a
}

/** Largest s with Pr[X < s] ≤ epsilon, X hypergeometric. */
export function lowerQuantile(total: number, marked: number, draws: number, epsilon: number): number {
  let s = 0
  let below = 0 // Pr[X < s]
  while (s < draws) {
    const next = below + hypergeometricPmf(total, marked, draws, s)
    if (next > epsilon) break
    below = next
    s++
  }
  return s
}

const LOG_FACTORIAL: number[] = [0]

/** ln(n!) by summation, cached (exact enough: relative error ~ n·2^-53). */
export function logFactorial(n: number): number {
  for (let i = LOG_FACTORIAL.length; i <= n; i++) LOG_FACTORIAL.push((LOG_FACTORIAL[i - 1] as number) + Math.log(i))
  return LOG_FACTORIAL[n] as number
}

function logChoose(n: number, k: number): number {
  return logFactorial(n) - logFactorial(k) - logFactorial(n - k)
}
