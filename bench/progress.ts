/**
 * A progress line on stderr for long benchmarks, so that stdout stays clean for `--json`.
 * On a terminal the line is redrawn in place; in a log (no TTY) a line is written at most every
 * `LOG_EVERY_MS`, and always at the end, so a CI log shows the run advancing without flooding.
 */

const WIDTH = 24
const LOG_EVERY_MS = 10_000

export class Progress {
  readonly #label: string
  readonly #total: number
  readonly #started = performance.now()
  readonly #tty = process.stderr.isTTY === true
  #lastLog = -Infinity

  constructor(label: string, total: number) {
    this.#label = label
    this.#total = Math.max(total, 1)
  }

  /** Shows `done` of `total` steps, with a free-form `detail` (a loss, a cohort size). */
  update(done: number, detail = ''): void {
    const now = performance.now()
    const finished = done >= this.#total
    if (!this.#tty && !finished && now - this.#lastLog < LOG_EVERY_MS) return
    this.#lastLog = now
    const filled = Math.round((WIDTH * Math.min(done, this.#total)) / this.#total)
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}]`
    const seconds = ((now - this.#started) / 1000).toFixed(0)
    const line = `${this.#label.padEnd(22)} ${bar} ${done}/${this.#total} ${seconds} s ${detail}`
    if (this.#tty) process.stderr.write(`\r\x1b[2K${line}${finished ? '\n' : ''}`)
    else process.stderr.write(`${line}\n`)
  }

  /** A message on its own line (a phase starting), without disturbing the bar. */
  static note(message: string): void {
    process.stderr.write(`${process.stderr.isTTY === true ? '\r\x1b[2K' : ''}${message}\n`)
  }
}
