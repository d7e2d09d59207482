/**
 * Adaptive server optimizers: FedAdagrad, FedAdam and FedYogi (Reddi, Charles, Zaheer, Garrett,
 * Rush, Konečný, Kumar, McMahan, "Adaptive Federated Optimization", ICLR 2021, Algorithm 2).
 *
 * The round's mean client delta Δ_t = sum / count is a pseudo-gradient; the server keeps a first
 * moment m and a second moment v per coordinate:
 *
 *   m_t = β1·m_{t-1} + (1 − β1)·Δ_t
 *   v_t = v_{t-1} + Δ_t²                                   (FedAdagrad)
 *   v_t = β2·v_{t-1} + (1 − β2)·Δ_t²                        (FedAdam)
 *   v_t = v_{t-1} − (1 − β2)·Δ_t²·sign(v_{t-1} − Δ_t²)      (FedYogi)
 *   x_{t+1} = x_t + η_t·m_t / (√v_t + τ),   η_t = η·γ^t  (times a tensor's own factor, if set)
 *
 * with v_{-1} = τ² as in the paper (Algorithm 2 asks v_{-1} ≥ τ²) and no bias correction (the
 * paper has none; Flower's FedAdam adds one, which only rescales η in the first rounds).
 * Defaults are the paper's recommended starting points: β1 = 0.9, β2 = 0.99, τ = 10⁻³.
 *
 * Under differential privacy these run on the already-noised mean, so they are post-processing
 * and cost no privacy budget.
 *
 * m and v are stored with each version they produce and resumed from the base version's
 * (`rounds/server-step.ts`), so a restart continues bit for bit. A version without stored
 * moments (the initial weights, a rollback, one published by another optimizer) starts them
 * afresh, as at t = 0.
 */
import { HearthError } from '../../protocol/errors.ts'
import type { TensorSlice } from '../../protocol/model-spec.ts'
import type { AggregateResult, OptimizerState, StatefulOptimizer } from './strategy.ts'

export type AdaptiveKind = 'fedadagrad' | 'fedadam' | 'fedyogi'

/** Hyper-parameters of an adaptive server optimizer. */
export interface AdaptiveOptimizerOptions {
  /** Server learning rate η. Default 0.1. */
  readonly learningRate?: number
  /** First-moment decay β1 in [0, 1). Default 0.9. */
  readonly beta1?: number
  /** Second-moment decay β2 in [0, 1) (not used by FedAdagrad). Default 0.99. */
  readonly beta2?: number
  /** Adaptivity τ > 0: bounds the step where v is small. Default 1e-3. */
  readonly tau?: number
  /**
   * γ in (0, 1]: round t steps with η·γ^t (t counts from 0 with the moments, so a restart
   * continues the schedule and a rollback restarts it). Default 1: a constant rate. Adaptive steps
   * do not shrink as the model converges; a decay lets a long run settle instead of drifting.
   */
  readonly learningRateDecay?: number
  /**
   * η times this factor for the named federated tensors (others: 1). The per-coordinate
   * normalization moves every coordinate by about η a round however many devices agree on it;
   * a layer every device updates (the shared tower of `hearth-mf-v1`) then jitters by η a round
   * and shifts every item at once, where an item's own row moves only when its devices say so.
   * The names are checked against the model's layout at each step.
   */
  readonly tensorLearningRates?: Readonly<Record<string, number>>
}

const DEFAULTS = { learningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3, learningRateDecay: 1 } as const

export class AdaptiveOptimizer implements StatefulOptimizer {
  readonly name: AdaptiveKind
  readonly learningRate: number
  readonly beta1: number
  readonly beta2: number
  readonly tau: number
  readonly learningRateDecay: number
  readonly tensorLearningRates: Readonly<Record<string, number>>
  #m: Float64Array | null = null
  #v: Float64Array | null = null
  #rounds = 0

  constructor(kind: AdaptiveKind, options: AdaptiveOptimizerOptions = {}, state?: OptimizerState) {
    this.name = kind
    this.learningRate = checked('learningRate', options.learningRate ?? DEFAULTS.learningRate, (x) => x > 0)
    this.beta1 = checked('beta1', options.beta1 ?? DEFAULTS.beta1, (x) => x >= 0 && x < 1)
    this.beta2 = checked('beta2', options.beta2 ?? DEFAULTS.beta2, (x) => x >= 0 && x < 1)
    this.tau = checked('tau', options.tau ?? DEFAULTS.tau, (x) => x > 0)
    this.learningRateDecay = checked('learningRateDecay', options.learningRateDecay ?? DEFAULTS.learningRateDecay, (x) => x > 0 && x <= 1)
    const rates = options.tensorLearningRates ?? {}
    for (const [name, factor] of Object.entries(rates)) checked(`tensorLearningRates.${name}`, factor, (x) => x > 0)
    this.tensorLearningRates = { ...rates }
    if (state !== undefined) {
      if (state.m.length !== state.v.length) throw new RangeError('optimizer state: m and v differ in length')
      this.#m = Float64Array.from(state.m)
      this.#v = Float64Array.from(state.v)
      this.#rounds = state.rounds
    }
  }

  /** A fresh optimizer with these hyper-parameters, resuming from `state` (null: from scratch). */
  resume(state: OptimizerState | null): AdaptiveOptimizer {
    const { learningRate, beta1, beta2, tau, learningRateDecay, tensorLearningRates } = this
    return new AdaptiveOptimizer(this.name, { learningRate, beta1, beta2, tau, learningRateDecay, tensorLearningRates }, state ?? undefined)
  }

  /** A copy of the moments, or null before the first step. */
  state(): OptimizerState | null {
    if (this.#m === null || this.#v === null) return null
    return { rounds: this.#rounds, m: Float64Array.from(this.#m), v: Float64Array.from(this.#v) }
  }

  step(current: Float32Array, aggregate: AggregateResult, layout?: readonly TensorSlice[]): Float32Array {
    const { sum, count } = aggregate
    if (sum.length !== current.length) {
      throw new HearthError('HEARTH_ERR_MODEL_MISMATCH', `aggregate has ${sum.length} elements, the model ${current.length}`)
    }
    if (!(count > 0)) throw new RangeError(`count must be positive, got ${count}`)
    if (this.#m !== null && this.#m.length !== current.length) {
      throw new HearthError('HEARTH_ERR_MODEL_MISMATCH', `optimizer state has ${this.#m.length} elements, the model ${current.length}`)
    }
    const m = (this.#m ??= new Float64Array(current.length))
    const v = (this.#v ??= new Float64Array(current.length).fill(this.tau * this.tau))
    const { beta1, beta2, tau } = this
    const learningRate = this.learningRate * this.learningRateDecay ** this.#rounds
    const factors = this.#factors(current.length, layout)
    const next = new Float32Array(current.length)
    for (let i = 0; i < next.length; i++) {
      const delta = (sum[i] as number) / count
      const square = delta * delta
      m[i] = beta1 * (m[i] as number) + (1 - beta1) * delta
      const previous = v[i] as number
      v[i] =
        this.name === 'fedadagrad'
          ? previous + square
          : this.name === 'fedadam'
            ? beta2 * previous + (1 - beta2) * square
            : previous - (1 - beta2) * square * Math.sign(previous - square)
      const rate = factors === null ? learningRate : learningRate * (factors[i] as number)
      next[i] = (current[i] as number) + (rate * (m[i] as number)) / (Math.sqrt(v[i] as number) + tau)
    }
    this.#rounds++
    return next
  }

  /**
   * Throws `HEARTH_ERR_INVALID_CONFIG` unless every tensor `tensorLearningRates` names is in
   * `layout` (a model's `federatedLayout(spec)`): lets a server refuse a bad setting at startup
   * rather than at the end of its first round.
   */
  checkLayout(layout: readonly TensorSlice[]): void {
    for (const name of Object.keys(this.tensorLearningRates)) this.#slice(layout, name)
  }

  #slice(layout: readonly TensorSlice[] | undefined, name: string): TensorSlice {
    const slice = layout?.find((s) => s.tensor.name === name)
    if (slice === undefined) throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `optimizer tensorLearningRates names "${name}", which is not a federated tensor of the model`)
    return slice
  }

  /** Each coordinate's factor of η from `tensorLearningRates`, or null when there is none. */
  #factors(length: number, layout: readonly TensorSlice[] | undefined): Float64Array | null {
    const named = Object.entries(this.tensorLearningRates)
    if (named.length === 0) return null
    const factors = new Float64Array(length).fill(1)
    for (const [name, factor] of named) {
      const { offset, size } = this.#slice(layout, name)
      factors.fill(factor, offset, offset + size)
    }
    return factors
  }
}

function checked(name: string, value: number, ok: (x: number) => boolean): number {
  if (!Number.isFinite(value) || !ok(value)) throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `optimizer ${name} is out of range: ${value}`)
  return value
}
