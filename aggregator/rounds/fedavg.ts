/**
 * FedAvg's server step on client deltas: x_{t+1} = x_t + (1/n) Σ_i Δ_i
 * (McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized
 * Data", AISTATS 2017, Algorithm 1, written with deltas as in Reddi et al., "Adaptive
 * Federated Optimization", ICLR 2021, Algorithm 1 with server learning rate η = 1).
 *
 * The mean is unweighted: weighting by each client's example count would publish that count to
 * the server and breaks the user-level sensitivity DP relies on (one device, one vote).
 */
import { HearthError } from '../../protocol/errors.ts'
import type { AggregateResult, ServerOptimizer } from './strategy.ts'

export class FedAvg implements ServerOptimizer {
  readonly name = 'fedavg'

  step(current: Float32Array, aggregate: AggregateResult): Float32Array {
    const { sum, count } = aggregate
    if (sum.length !== current.length) {
      throw new HearthError('HEARTH_ERR_MODEL_MISMATCH', `aggregate has ${sum.length} elements, the model ${current.length}`)
    }
    if (!(count > 0)) throw new RangeError(`count must be positive, got ${count}`)
    const next = new Float32Array(current.length)
    // Computed in float64; storing into a Float32Array rounds once, to nearest with ties to
    // even (ECMAScript NumericToRawBytes, IEEE 754-2019 roundTiesToEven).
    for (let i = 0; i < next.length; i++) next[i] = (current[i] as number) + (sum[i] as number) / count
    return next
  }
}
