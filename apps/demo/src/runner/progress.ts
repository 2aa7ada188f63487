/** The runner's terminal line: stage, step, live request count, elapsed time. */
export class Progress {
  readonly #start = Date.now()
  readonly #tty = process.stdout.isTTY === true
  #stage = ''
  #step = ''
  #requests: number | undefined
  #lastPrint = 0

  stage(label: string): void {
    this.#stage = label
    this.#step = ''
    this.#requests = undefined
    this.#line(true)
  }

  step(label: string): void {
    this.#step = label
    this.#requests = undefined
    this.#line(true)
  }

  requests(count: number): void {
    this.#requests = count
    this.#line(false)
  }

  /** A finished line that stays on screen. */
  note(text: string): void {
    if (this.#tty) process.stdout.write('\r\x1b[K')
    process.stdout.write(`${text}\n`)
    if (this.#tty) this.#line(true)
  }

  done(): void {
    if (this.#tty) process.stdout.write('\n')
  }

  #line(changed: boolean): void {
    const elapsed = Math.round((Date.now() - this.#start) / 1000)
    const clock = `${Math.floor(elapsed / 60)}m${String(elapsed % 60).padStart(2, '0')}s`
    const live = this.#requests === undefined ? '' : `  ${this.#requests.toLocaleString('en')} requests`
    const text = `[${clock}] ${this.#stage}${this.#step ? ` > ${this.#step}` : ''}${live}`
    if (this.#tty) {
      process.stdout.write(`\r\x1b[K${text.slice(0, (process.stdout.columns ?? 120) - 1)}`)
    } else if (changed || Date.now() - this.#lastPrint > 5_000) {
      // Not a terminal (CI): a line per step, and every 5 s during load.
      process.stdout.write(`${text}\n`)
      this.#lastPrint = Date.now()
    }
  }
}
