/** What happened to one key: the names `on()` takes. */
export type CacheEventName = 'hit' | 'miss' | 'set' | 'delete' | 'stale' | 'error'

export const EVENT_NAMES: readonly CacheEventName[] = ['hit', 'miss', 'set', 'delete', 'stale', 'error']

/** One event as a listener gets it. */
export interface CacheEvent {
  type: CacheEventName
  key: string
  /** `hit`: where the value came from. */
  tier?: 'local' | 'redis'
  /** `set`: `load` for a loaded value written under its lease, `set` for `cache.set`. */
  source?: 'load' | 'set'
  /** `stale`: how many callers got the stale value. */
  callers?: number
  /** `error`: what the loader threw (the callers got it, or a stale value within grace). */
  error?: unknown
}

export type CacheEventListener = (event: CacheEvent) => void

type Listeners = Set<CacheEventListener>

/**
 * Per-key events. Emitting costs one boolean test while nobody listens, so the hot paths call
 * `emit` unconditionally. A throwing listener (or an async one that rejects) is reported to
 * `onListenerError` and never breaks the read or write that emitted.
 */
export class CacheEvents {
  /** `true` while at least one listener is registered. */
  listening = false
  readonly #any = new Map<CacheEventName, Listeners>()
  readonly #byKey = new Map<CacheEventName, Map<string, Listeners>>()
  readonly #onListenerError: (error: unknown) => void
  #count = 0

  constructor(onListenerError: (error: unknown) => void) {
    this.#onListenerError = onListenerError
  }

  /** Registers `listener` for `type` (of every key, or of `key` only); returns the unsubscribe. */
  on(type: CacheEventName, key: string | undefined, listener: CacheEventListener): () => void {
    const listeners = key === undefined ? this.#listenersOf(type) : this.#listenersOfKey(type, key)
    if (listeners.has(listener)) return () => {}
    listeners.add(listener)
    this.#count++
    this.listening = true
    let on = true
    return () => {
      if (!on) return
      on = false
      listeners.delete(listener)
      if (key !== undefined && listeners.size === 0) this.#byKey.get(type)?.delete(key)
      this.#count--
      this.listening = this.#count > 0
    }
  }

  #listenersOf(type: CacheEventName): Listeners {
    const existing = this.#any.get(type)
    if (existing !== undefined) return existing
    const created: Listeners = new Set()
    this.#any.set(type, created)
    return created
  }

  #listenersOfKey(type: CacheEventName, key: string): Listeners {
    let byKey = this.#byKey.get(type)
    if (byKey === undefined) {
      byKey = new Map()
      this.#byKey.set(type, byKey)
    }
    const existing = byKey.get(key)
    if (existing !== undefined) return existing
    const created: Listeners = new Set()
    byKey.set(key, created)
    return created
  }

  emit(type: CacheEventName, key: string, detail?: Omit<CacheEvent, 'type' | 'key'>): void {
    if (!this.listening) return
    const forKey = this.#byKey.get(type)?.get(key)
    const any = this.#any.get(type)
    if (forKey === undefined && any === undefined) return
    const event: CacheEvent = { type, key, ...detail }
    if (forKey !== undefined) this.#call(forKey, event)
    if (any !== undefined) this.#call(any, event)
  }

  #call(listeners: Listeners, event: CacheEvent): void {
    for (const listener of listeners) {
      try {
        const result: unknown = listener(event)
        // An async listener that rejects would otherwise be an unhandled rejection (a crash under
        // Node's default): reported like a throw.
        if (isThenable(result)) result.then(undefined, this.#onListenerError)
      } catch (error) {
        this.#onListenerError(error)
      }
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function'
}
