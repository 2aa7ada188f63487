import type { Redis } from 'ioredis'
import { onClientReady } from './client-ready.js'
import type { RedisClient } from './redis-tier.js'

export interface ReplayDriverOptions {
  client: RedisClient
  /** How often a replay is attempted while invalidations wait (each attempt passes the breaker). */
  intervalMs: number
  /** Bounds each command of the replay connection. */
  commandTimeoutMs: number
  hasPending: () => boolean
  /** One replay attempt through the user's client; `force`: the connection is back, do not wait for the breaker's open period. */
  replay: (force: boolean) => Promise<void>
  /** One replay attempt over the replay connection. */
  replayVia: (connection: RedisClient) => Promise<void>
}

const noop = () => {}

/**
 * Replays invalidations queued during an outage by itself, as soon as Redis is back, instead of
 * waiting for the next command of a process that may stay idle for minutes while every other
 * process reads the old value from Redis. Triggers: the client's `ready` event (it reconnected:
 * replay at once, the circuit's open period notwithstanding) and a timer that runs only while
 * something is queued (a paused or hung server never disconnects, so it never emits `ready`).
 *
 * On a single `Redis`, while the user's client is not ready the timer also tries a replay
 * connection of the cache's own (a `duplicate()` opened only while invalidations wait, closed once
 * they are out): it retries every `intervalMs` and has no ready check, so the replay does not wait
 * for the user's client's reconnect back-off (up to 2 s by default) nor for ioredis' one-second
 * pause when it catches a restarted server still loading its data. The timer is unref'd: queued
 * invalidations alone never keep a process alive.
 */
export class ReplayDriver {
  readonly #options: ReplayDriverOptions
  #timer: NodeJS.Timeout | undefined
  #attempt: Promise<void> | undefined
  /** Set by `ready` until a replay succeeds: every attempt may probe at once. */
  #connectionBack = false
  #connection: Redis | undefined
  #closed = false
  readonly #offReady: () => void

  constructor(options: ReplayDriverOptions) {
    this.#options = options
    this.#offReady = onClientReady(options.client, this.#onReady)
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
    this.#attempt = this.#tryOnce().finally(() => {
      this.#attempt = undefined
      if (!this.#options.hasPending()) this.#stop()
    })
  }

  async #tryOnce(): Promise<void> {
    const { client } = this.#options
    if (client.status === 'ready' || (client as { isCluster?: boolean }).isCluster === true) {
      return this.#options.replay(this.#connectionBack)
    }
    const connection = this.#openConnection()
    if (connection.status !== 'ready') return
    await this.#options.replayVia(connection).catch(noop)
  }

  #openConnection(): Redis {
    if (this.#connection === undefined) {
      this.#connection = (this.#options.client as Redis).duplicate({
        enableReadyCheck: false,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResubscribe: false,
        commandTimeout: this.#options.commandTimeoutMs,
        retryStrategy: () => this.#options.intervalMs,
      })
      this.#connection.on('error', noop)
    }
    return this.#connection
  }

  #stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#connectionBack = false
    this.#connection?.disconnect()
    this.#connection = undefined
  }

  /** Stops the attempts and detaches from the client; an attempt under way is awaited. */
  async close(): Promise<void> {
    this.#closed = true
    await this.#attempt
    this.#stop()
    this.#offReady()
  }
}
