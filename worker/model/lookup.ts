/**
 * Row lookup with a scatter-add gradient.
 *
 * `tf.gather`'s registered gradient is `unsortedSegmentSum` (tfjs-core GatherV2_grad), which the
 * cpu backend runs as one masked sum per row of the table (tfjs-backend-cpu
 * UnsortedSegmentSum.js): 4096 buckets cost 4096 × 5 kernels per step, minutes per epoch. The
 * wasm backend has no such kernel at all. The gradient of a lookup is the same thing written
 * directly: dy's rows added into a zero table at their indices, which `scatterND` does in one
 * pass, summing repeated indices (TensorFlow `scatter_nd`: "updates for duplicate indices are
 * summed"). Rows not looked up get a gradient of exactly zero.
 */
import * as tf from '../tf.ts'

/** `tf.gather(table, indices)` along axis 0, with a one-kernel gradient for `table`. */
export function lookupRows<R extends tf.Rank>(table: tf.Tensor<R>, indices: tf.Tensor1D): tf.Tensor<R> {
  const lookup = tf.customGrad((x, save) => {
    const source = x as tf.Tensor<R>
    // The forward pass runs in its own tidy scope and the backward pass in another: the indices
    // must be saved to outlive the first (tfjs-core engine.ts `gradients`).
    ;(save as tf.GradSaveFunc)([indices])
    return {
      value: tf.gather(source, indices),
      gradFunc: (dy: tf.Tensor<R>, saved: tf.Tensor[]) => {
        const rows = saved[0] as tf.Tensor1D
        return tf.scatterND(tf.expandDims(rows, 1), dy, source.shape)
      },
    }
  })
  return lookup(table) as tf.Tensor<R>
}
