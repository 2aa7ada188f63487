import type { RedisClient } from './redis-tier.js'

export interface InvalidationMessage {
  /** Sender id: a process ignores its own messages (it already applied them). */
  o: string
  /** Logical keys to drop from every local tier. */
  k: string[]
  /** `true`: drop everything (a `clear()`). */
  a?: true
}

export interface InvalidationBusOptions {
  client: RedisClient
  channel: string
  origin: string
  onKeys: (keys: string[]) => void
  /** A `clear()` elsewhere: drop the whole local tier. */
  onAll: () => void
  /** Called when the subscription is (re)established: messages may have been missed before it. */
  onSubscribed: () => void
  /** Called when the subscriber connection drops: from now on messages may be missed. */
  onDisconnected: () => void
  /** The subscriber connection reconnected: the server is answering again. */
  onServerBack: () => void
  onError: (error: unknown) => void
}

/**
 * Carries invalidations to the local tier of every process over Redis pub/sub. Uses its own
 * connection (`duplicate()` of the user's client) because a subscribed connection can run no
 * other command. Pub/sub is at-most-once, so whenever the subscriber reconnects the owner clears
 * its local tier: anything it missed while disconnected is dropped with it.
 */
export class InvalidationBus {
  readonly #subscriber: RedisClient
  readonly #options: InvalidationBusOptions
  #subscribed = false
  #closed = false
  #initialDone = false
  readonly ready: Promise<void>

  constructor(options: InvalidationBusOptions) {
    this.#options = options
    // Our own connection, so its reconnect schedule is ours: at most 500 ms apart (ioredis' default
    // backs off to 2 s), so the return of the server is noticed soon (see onServerBack).
    const client = options.client as { isCluster?: boolean; duplicate(override?: object): RedisClient }
    this.#subscriber =
      client.isCluster === true
        ? options.client.duplicate()
        : client.duplicate({ retryStrategy: (times: number) => Math.min(times * 50, 500) })
    this.#subscriber.on('error', (error: unknown) => options.onError(error))
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel !== options.channel) return
      this.#receive(message)
    })
    this.#subscriber.on('close', () => {
      if (this.#subscribed) {
        this.#subscribed = false
        options.onDisconnected()
      }
    })
    // ioredis emits 'ready' after a reconnect BEFORE it re-sends its own SUBSCRIBE, so the reply
    // to anything sent from this listener (a PING, say) can arrive while the connection is not yet
    // subscribed, and a message published in between would be lost after the local tier was
    // cleared. Subscribing again (idempotent) and waiting for the server's confirmation proves
    // that every later message reaches us.
    this.#subscriber.on('ready', () => {
      if (this.#initialDone && !this.#closed) options.onServerBack()
      if (!this.#initialDone || this.#subscribed || this.#closed) return
      this.#subscriber.subscribe(options.channel).then(
        () => this.#markSubscribed(),
        (error: unknown) => options.onError(error),
      )
    })
    this.ready = this.#subscribe()
  }

  async #subscribe(): Promise<void> {
    try {
      await this.#subscriber.subscribe(this.#options.channel)
      this.#markSubscribed()
    } catch (error) {
      this.#initialDone = true
      // Not fatal: the local tier stays unused until a later 'ready' re-subscribes.
      this.#options.onError(error)
    }
  }

  #markSubscribed(): void {
    this.#initialDone = true
    if (this.#subscribed || this.#closed) return
    this.#subscribed = true
    this.#options.onSubscribed()
  }

  get subscribed(): boolean {
    return this.#subscribed
  }

  #receive(message: string): void {
    let parsed: InvalidationMessage
    try {
      parsed = JSON.parse(message) as InvalidationMessage
    } catch {
      return
    }
    if (parsed.o === this.#options.origin || !Array.isArray(parsed.k)) return
    if (parsed.a === true) this.#options.onAll()
    else this.#options.onKeys(parsed.k)
  }

  static encode(origin: string, keys: string[]): string {
    return JSON.stringify({ o: origin, k: keys } satisfies InvalidationMessage)
  }

  static encodeAll(origin: string): string {
    return JSON.stringify({ o: origin, k: [], a: true } satisfies InvalidationMessage)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#subscribed = false
    // QUIT waits for the server; during an outage it would wait forever. Give it a moment, then cut.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.#subscriber.quit().catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 1_000)
      }),
    ])
    clearTimeout(timer)
    this.#subscriber.disconnect()
  }
}
