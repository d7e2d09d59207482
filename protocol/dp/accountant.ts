/**
 * The Rényi DP accountant: composes privacy events over rounds and reports (ε, δ).
 *
 * Composition: RDP at a fixed order adds up over adaptively chosen mechanisms (Mironov 2017,
 * "Rényi Differential Privacy", Prop. 1), so the accountant keeps one running sum per order and
 * converts with CKS20 Prop. 12 (conversion.ts). Per-round RDP curves are cached per event, so
 * replaying a ledger of 10,000 rounds costs one curve per distinct (q, z), then additions.
 */
import { checkDelta, checkInteger, checkNonNegative, checkPositive } from './checks.ts'
import { deltaFromRdp, epsilonFromRdp, type DeltaAndOrder, type EpsilonAndOrder } from './conversion.ts'
import { distributedDiscreteGaussianRdp, skellamRdp, subsampledIntegerOrderRdp } from './distributed.ts'
import { eventKey, type PrivacyEvent } from './events.ts'
import { checkOrders, DEFAULT_RDP_ORDERS } from './orders.ts'
import { sampledGaussianRdp } from './sampled-gaussian.ts'

const CACHE_LIMIT = 512
const curveCache = new WeakMap<readonly number[], Map<string, Float64Array>>()

/** The per-round RDP of `event` at `orders` (not composed). */
export function eventRdp(event: PrivacyEvent, orders: readonly number[] = DEFAULT_RDP_ORDERS): Float64Array {
  switch (event.kind) {
    case 'sampled-gaussian':
      return sampledGaussianRdp(event.samplingRate, event.noiseMultiplier, orders)
    case 'sampled-distributed-discrete-gaussian':
      checkOrders(orders)
      return subsampledIntegerOrderRdp(event.samplingRate, orders, (a) => distributedDiscreteGaussianRdp(event, a))
    case 'sampled-skellam':
      checkOrders(orders)
      return subsampledIntegerOrderRdp(event.samplingRate, orders, (a) => skellamRdp(event, a))
    default: {
      const unknown: { kind?: unknown } = event
      throw new TypeError(`event.kind is not a known privacy event: ${String(unknown.kind)}`)
    }
  }
}

function cachedEventRdp(event: PrivacyEvent, orders: readonly number[]): Float64Array {
  let perOrders = curveCache.get(orders)
  if (perOrders === undefined) {
    perOrders = new Map()
    curveCache.set(orders, perOrders)
  }
  const key = eventKey(event)
  let curve = perOrders.get(key)
  if (curve === undefined) {
    curve = eventRdp(event, orders)
    if (perOrders.size >= CACHE_LIMIT) perOrders.clear()
    perOrders.set(key, curve)
  }
  return curve
}

/**
 * Accumulates Rényi DP over privacy events and converts to (ε, δ).
 *
 * @example
 * const accountant = new RdpAccountant()
 * accountant.compose({ kind: 'sampled-gaussian', samplingRate: 0.01, noiseMultiplier: 1.1 }, 1000)
 * accountant.epsilon(1e-5) // ≈ 1.7118, as Google's dp_accounting reports
 */
export class RdpAccountant {
  readonly #orders: readonly number[]
  readonly #rdp: Float64Array
  #rounds = 0

  /** @param orders - Rényi orders to track; dp_accounting's 156 defaults unless given. */
  constructor(orders: readonly number[] = DEFAULT_RDP_ORDERS) {
    checkOrders(orders)
    this.#orders = orders === DEFAULT_RDP_ORDERS ? orders : Object.freeze([...orders])
    this.#rdp = new Float64Array(orders.length)
  }

  /** Adds `count` rounds of `event` (count >= 0, an integer). Returns `this`. */
  compose(event: PrivacyEvent, count = 1): this {
    checkInteger(count, 'count', 0)
    if (count === 0) return this
    const curve = cachedEventRdp(event, this.#orders)
    for (let i = 0; i < curve.length; i++) this.#rdp[i] = (this.#rdp[i] as number) + count * (curve[i] as number)
    this.#rounds += count
    return this
  }

  /** The smallest ε such that everything composed so far is (ε, δ)-DP, and its order. */
  epsilonAndOrder(delta: number): EpsilonAndOrder {
    checkDelta(delta)
    if (this.#rounds === 0) return { epsilon: 0, order: this.#orders[0] as number }
    return epsilonFromRdp(this.#orders, this.#rdp, delta)
  }

  /** The smallest ε such that everything composed so far is (ε, δ)-DP. */
  epsilon(delta: number): number {
    return this.epsilonAndOrder(delta).epsilon
  }

  /** The smallest δ such that everything composed so far is (ε, δ)-DP, and its order. */
  deltaAndOrder(epsilon: number): DeltaAndOrder {
    checkNonNegative(epsilon, 'epsilon')
    if (this.#rounds === 0) return { delta: 0, order: this.#orders[0] as number }
    return deltaFromRdp(this.#orders, this.#rdp, epsilon)
  }

  /** The number of rounds composed so far. */
  get rounds(): number {
    return this.#rounds
  }

  /** The tracked orders. */
  get orders(): readonly number[] {
    return this.#orders
  }

  /** A copy of the composed RDP, one value per order. */
  get rdp(): Float64Array {
    return this.#rdp.slice()
  }

  /** An independent copy (to ask "what if" without changing this one). */
  clone(): RdpAccountant {
    const copy = new RdpAccountant(this.#orders)
    copy.#rdp.set(this.#rdp)
    copy.#rounds = this.#rounds
    return copy
  }
}

/** Parameters of the central sampled Gaussian mechanism over `rounds` identical rounds. */
export interface SampledGaussianQuery {
  readonly samplingRate: number
  readonly noiseMultiplier: number
  readonly rounds: number
  readonly delta: number
  readonly orders?: readonly number[]
}

/** ε (and the optimal order) of `rounds` rounds of the sampled Gaussian mechanism (MTZ19 + CKS20). */
export function sampledGaussianEpsilon(query: SampledGaussianQuery): EpsilonAndOrder {
  checkInteger(query.rounds, 'rounds', 0)
  return new RdpAccountant(query.orders)
    .compose({ kind: 'sampled-gaussian', samplingRate: query.samplingRate, noiseMultiplier: query.noiseMultiplier }, query.rounds)
    .epsilonAndOrder(query.delta)
}

/** Parameters of the inverse question: how much noise for a target (ε, δ)? */
export interface NoiseMultiplierQuery {
  readonly samplingRate: number
  readonly rounds: number
  readonly epsilon: number
  readonly delta: number
  /** Relative tolerance of the bisection on z; default 1e-6. */
  readonly tolerance?: number
  readonly orders?: readonly number[]
}

/** The answer: the noise multiplier found, and the (ε, order) it achieves. */
export interface NoiseMultiplierResult extends EpsilonAndOrder {
  readonly noiseMultiplier: number
}

const MAX_NOISE_MULTIPLIER = 2 ** 30

/**
 * The smallest noise multiplier z (to relative tolerance) such that `rounds` rounds of the
 * sampled Gaussian at rate q are (ε, δ)-DP. ε(z) is non-increasing in z (each order's RDP is),
 * so bisection applies: bracket by doubling/halving, then halve [lo, hi] until
 * hi − lo <= tolerance·hi. The returned z is the upper end, so it always meets the target:
 * ε(z) <= epsilon, and z is at most (1 + tolerance) times the exact answer.
 *
 * @throws RangeError if no z up to 2^30 meets the target (e.g. ε too small for the δ asked).
 */
export function noiseMultiplierForEpsilon(query: NoiseMultiplierQuery): NoiseMultiplierResult {
  const { samplingRate, rounds, epsilon: target, delta } = query
  const tolerance = query.tolerance ?? 1e-6
  checkPositive(target, 'epsilon')
  checkDelta(delta)
  checkInteger(rounds, 'rounds', 0)
  checkPositive(tolerance, 'tolerance')
  if (tolerance >= 1) throw new RangeError(`tolerance must be < 1, got ${tolerance}`)
  const orders = query.orders ?? DEFAULT_RDP_ORDERS
  const at = (z: number): EpsilonAndOrder => sampledGaussianEpsilon({ samplingRate, noiseMultiplier: z, rounds, delta, orders })
  if (samplingRate === 0 || rounds === 0) return { noiseMultiplier: 0, ...at(0) }
  let hi = 1
  let atHi = at(hi)
  while (atHi.epsilon > target) {
    hi *= 2
    if (hi > MAX_NOISE_MULTIPLIER) {
      throw new RangeError(`no noise multiplier up to 2^30 reaches epsilon ${target} at delta ${delta}`)
    }
    atHi = at(hi)
  }
  let lo = hi / 2
  while (lo > 1e-6 && at(lo).epsilon <= target) {
    hi = lo
    lo /= 2
  }
  atHi = at(hi)
  while (hi - lo > tolerance * hi) {
    const mid = (lo + hi) / 2
    const atMid = at(mid)
    if (atMid.epsilon <= target) {
      hi = mid
      atHi = atMid
    } else {
      lo = mid
    }
  }
  return { noiseMultiplier: hi, epsilon: atHi.epsilon, order: atHi.order }
}
