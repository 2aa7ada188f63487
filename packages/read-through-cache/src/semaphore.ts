/**
 * Caps concurrent loader calls. Without it, a Redis outage turns every cache read into a database
 * query at once; with it, the database sees at most `limit` loads per process and the rest queue.
 * A task run with a signal gives its slot back when the signal aborts, even if the task itself
 * never settles: one hung loader must not hold the cap for every other key.
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

  /**
   * The allocation-free form of `run` for the miss path: calls `start` now if a slot is free, else
   * when one is handed over; the holder must call `release()` once. `cancel(start)` leaves the queue.
   */
  acquire(start: () => void): void {
    if (this.#active >= this.#limit) {
      this.#queue.push(start)
      return
    }
    this.#active++
    if (this.#active > this.#peak) this.#peak = this.#active
    start()
  }

  /** Gives a slot taken by `acquire` back: straight to the next waiter, if any. */
  release(): void {
    const next = this.#queue.shift()
    if (next) next()
    else this.#active--
  }

  /** Removes a `start` still waiting in the queue (its call was given up). */
  cancel(start: () => void): void {
    const at = this.#queue.indexOf(start)
    if (at >= 0) this.#queue.splice(at, 1)
  }

  async run<T>(task: () => T | Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.#active >= this.#limit) await this.#enqueue(signal)
    else this.#active++
    if (this.#active > this.#peak) this.#peak = this.#active
    try {
      if (signal === undefined) return await task()
      signal.throwIfAborted()
      return await untilAborted(task(), signal)
    } finally {
      const next = this.#queue.shift()
      // Hand the slot straight to the next waiter so #active never dips and a newcomer cannot jump the queue.
      if (next) next()
      else this.#active--
    }
  }

  /** Waits for a slot handed over by a finishing task; leaves the queue if `signal` aborts first. */
  #enqueue(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const take = () => {
        signal?.removeEventListener('abort', leave)
        resolve()
      }
      const leave = () => {
        const at = this.#queue.indexOf(take)
        if (at >= 0) this.#queue.splice(at, 1)
        reject(signal?.reason)
      }
      if (signal?.aborted) return reject(signal.reason)
      signal?.addEventListener('abort', leave, { once: true })
      this.#queue.push(take)
    })
  }
}

/** `value`, or a rejection with the signal's reason as soon as it aborts (the value is then dropped). */
function untilAborted<T>(value: T | Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason)
    signal.addEventListener('abort', abort, { once: true })
    Promise.resolve(value).then(
      (result) => {
        signal.removeEventListener('abort', abort)
        resolve(result)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort)
        reject(error)
      },
    )
  })
}
