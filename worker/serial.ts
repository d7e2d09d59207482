/**
 * Runs async tasks one at a time, in call order. comlink delivers calls as they arrive, so a
 * `score()` could otherwise run in the middle of a round's training, on the round's weights.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve()

  /** Runs `task` after every task queued before it has settled; resolves or rejects as it does. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task)
    this.#tail = result.catch(() => undefined)
    return result
  }
}
