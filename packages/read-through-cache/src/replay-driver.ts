import type { RedisClient } from './redis-tier.js'

export interface ReplayDriverOptions {
  client: RedisClient
  /** How often a replay is attempted while invalidations wait (each attempt passes the breaker). */
  intervalMs: number
  hasPending: () => boolean
  /** One replay attempt; `force`: the connection is back, do not wait for the breaker's open period. */
  replay: (force: boolean) => Promise<void>
}

/**
 * Replays invalidations queued during an outage by itself, as soon as Redis is back, instead of
 * waiting for the next command of a process that may stay idle for minutes while every other
 * process reads the old value from Redis. Two triggers: the client's `ready` event (it reconnected:
 * replay at once, the circuit's open period notwithstanding) and a timer that runs only while
 * something is queued (a paused or hung server never disconnects, so it never emits `ready`). The
 * timer is unref'd: queued invalidations alone never keep a process alive.
 */
export class ReplayDriver {
  readonly #options: ReplayDriverOptions
  #timer: NodeJS.Timeout | undefined
  #attempt: Promise<void> | undefined
  /** Set by `ready` until a replay succeeds: every attempt may probe at once. */
  #connectionBack = false
  #closed = false

  constructor(options: ReplayDriverOptions) {
    this.#options = options
    options.client.on('ready', this.#onReady)
  }

  /** Called when an invalidation was queued: attempts start until the queue is empty. */
  queued(): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#timer = setInterval(this.#tick, this.#options.intervalMs)
    this.#timer.unref()
  }

  readonly #onReady = (): void => {
    if (!this.#options.hasPending()) return
    this.#connectionBack = true
    this.#tick()
  }

  readonly #tick = (): void => {
    if (!this.#options.hasPending() || this.#closed) {
      this.#stop()
      return
    }
    if (this.#attempt !== undefined) return
    this.#attempt = this.#options.replay(this.#connectionBack).finally(() => {
      this.#attempt = undefined
      if (!this.#options.hasPending()) this.#stop()
    })
  }

  #stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#connectionBack = false
  }

  /** Stops the attempts and detaches from the client; an attempt under way is awaited. */
  async close(): Promise<void> {
    this.#closed = true
    this.#stop()
    this.#options.client.off('ready', this.#onReady)
    await this.#attempt
  }
}
