/**
 * Caps concurrent loader calls. Without it, a Redis outage turns every cache read into a database
 * query at once; with it, the database sees at most `limit` loads per process and the rest queue.
 */
export class Semaphore {
  readonly #limit: number
  readonly #queue: (() => void)[] = []
  #active = 0
  #peak = 0

  constructor(limit: number) {
    this.#limit = limit
  }

  get active(): number {
    return this.#active
  }

  /** Highest number of concurrent holders seen so far. */
  get peak(): number {
    return this.#peak
  }

  get waiting(): number {
    return this.#queue.length
  }

  async run<T>(task: () => T | Promise<T>): Promise<T> {
    if (this.#active >= this.#limit) {
      await new Promise<void>((resolve) => this.#queue.push(resolve))
    } else {
      this.#active++
    }
    if (this.#active > this.#peak) this.#peak = this.#active
    try {
      return await task()
    } finally {
      const next = this.#queue.shift()
      // Hand the slot straight to the next waiter so #active never dips and a newcomer cannot jump the queue.
      if (next) next()
      else this.#active--
    }
  }
}
