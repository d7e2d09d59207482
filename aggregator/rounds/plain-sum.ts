/**
 * Plain (not secure) summation of float32 updates. The server sees each update in the clear
 * while it is added, then keeps only the running sum; nothing is written per client.
 */
import { HearthError } from '../../protocol/errors.ts'
import { FrameKind } from '../../protocol/frames.ts'
import type { AggregateResult, Aggregation, AggregationContext, AggregationStrategy } from './strategy.ts'

export interface PlainSumOptions {
  /** Reject updates whose L2 norm exceeds this bound. Undefined: no bound. */
  readonly maxNorm?: number | undefined
}

/**
 * Sums updates in float64: 29 more mantissa bits than the float32 inputs, so rounding in the
 * sum stays far below float32 resolution and the result rounds to float32 once, at the end.
 */
export class PlainSumStrategy implements AggregationStrategy {
  readonly name = 'plain-sum'
  readonly frameKind = FrameKind.Update
  readonly #maxNorm: number

  constructor(options: PlainSumOptions = {}) {
    const maxNorm = options.maxNorm ?? Number.POSITIVE_INFINITY
    if (!(maxNorm > 0)) throw new RangeError(`maxNorm must be a positive number, got ${maxNorm}`)
    this.#maxNorm = maxNorm
  }

  open(context: AggregationContext): Aggregation {
    return new PlainSum(context.vectorLength, this.#maxNorm)
  }
}

class PlainSum implements Aggregation {
  readonly #sum: Float64Array
  readonly #maxNorm: number
  #count = 0

  constructor(length: number, maxNorm: number) {
    this.#sum = new Float64Array(length)
    this.#maxNorm = maxNorm
  }

  get count(): number {
    return this.#count
  }

  add(_participant: string, values: Float32Array | Uint32Array): void {
    if (!(values instanceof Float32Array)) {
      throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', 'plain aggregation takes float32 updates')
    }
    if (values.length !== this.#sum.length) {
      throw new HearthError('HEARTH_ERR_VECTOR_LENGTH', `expected ${this.#sum.length} elements, got ${values.length}`)
    }
    // Check everything before touching the sum, so a rejected update leaves no trace.
    let squares = 0
    for (let i = 0; i < values.length; i++) {
      const x = values[i] as number
      // The frame codec already refuses non-finite values; this guards other callers.
      if (!Number.isFinite(x)) throw new HearthError('HEARTH_ERR_VECTOR_VALUE', `element ${i} is not finite`)
      squares += x * x
    }
    const norm = Math.sqrt(squares)
    if (norm > this.#maxNorm) {
      throw new HearthError('HEARTH_ERR_VECTOR_VALUE', `L2 norm ${norm.toPrecision(6)} exceeds ${this.#maxNorm}`)
    }
    for (let i = 0; i < values.length; i++) this.#sum[i] = (this.#sum[i] as number) + (values[i] as number)
    this.#count++
  }

  async result(): Promise<AggregateResult> {
    return { sum: this.#sum.slice(), count: this.#count }
  }
}
