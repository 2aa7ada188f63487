import { ShardingError, type ShardingErrorContext, ShardMapStaleError } from './errors.js'
import type { ShardMapStore } from './map-store.js'
import type { Observability } from './observability.js'
import type { ShardMap } from './shard-map.js'

/**
 * Holds a router's current map and moves it forward: on a timer (unref'd: it never keeps the
 * process alive), on NOTIFY, and on demand when a shard refuses a write for a bucket it no longer
 * owns. A lower or equal epoch is ignored, so a slow poll never moves a router backwards.
 */
export class MapHolder {
  #map: ShardMap
  readonly #store: ShardMapStore | undefined
  readonly #accept: (map: ShardMap) => void
  readonly #obs: Observability
  readonly #loadTimeoutMs: number
  #timer: NodeJS.Timeout | undefined
  #unwatch: (() => Promise<void>) | undefined
  #inflight: Promise<ShardMap> | undefined
  #closed = false
  // When the last successful load *started*: the map is at least as new as the store was then.
  #confirmedAt = performance.now()

  constructor(
    map: ShardMap,
    store: ShardMapStore | undefined,
    accept: (map: ShardMap) => void,
    obs: Observability,
    loadTimeoutMs = Number.POSITIVE_INFINITY,
  ) {
    this.#loadTimeoutMs = loadTimeoutMs
    this.#map = map
    this.#store = store
    this.#accept = accept
    this.#obs = obs
  }

  get current(): ShardMap {
    return this.#map
  }

  /**
   * Subscribes to the store (LISTEN) and starts polling. Opening the subscription is bounded by
   * `loadTimeoutMs` like a load; if it fails or is late, nothing is left running: no timer is
   * started, and a subscription that opens after the deadline is ended as soon as it does.
   */
  async start(refreshIntervalMs: number): Promise<void> {
    const store = this.#store
    if (!store) return
    if (store.watch) {
      const onChange = () => {
        if (!this.#closed) void this.refresh().catch(() => {})
      }
      const subscribing = Promise.resolve().then(() =>
        (store.watch as NonNullable<typeof store.watch>)(onChange),
      )
      const context = { startup: true, step: 'listen', mapLoadTimeoutMs: this.#loadTimeoutMs }
      try {
        this.#unwatch = await withTimeout(subscribing, this.#loadTimeoutMs, context)
      } catch (error) {
        this.#closed = true
        subscribing.then((unwatch) => unwatch()).catch(() => {})
        throw storeError(error, context)
      }
    }
    if (refreshIntervalMs > 0) {
      this.#timer = setInterval(() => void this.refresh().catch(() => {}), refreshIntervalMs)
      this.#timer.unref()
    }
  }

  /**
   * Loads the stored map; adopts it if its epoch is newer. Concurrent calls share one load. A
   * load that has not answered within `loadTimeoutMs` (a hung store runs no timers, so a server
   * side timeout cannot end it) is given up: the call rejects and the next call starts afresh.
   * A store that fails or is late rejects with `ShardMapStaleError`; a map it returns that does not
   * parse or names an unknown shard rejects with that error.
   */
  refresh(): Promise<ShardMap> {
    if (!this.#store) return Promise.resolve(this.#map)
    if (!this.#inflight) {
      const context = { epoch: this.#map.epoch, mapLoadTimeoutMs: this.#loadTimeoutMs }
      const load: Promise<ShardMap> = withTimeout(this.#load(), this.#loadTimeoutMs, context)
        .catch((error: unknown) => {
          throw storeError(error, context)
        })
        .finally(() => {
          if (this.#inflight === load) this.#inflight = undefined
        })
      this.#inflight = load
    }
    return this.#inflight
  }

  /** Milliseconds since the store last confirmed this map (0 for a fixed map). */
  get ageMs(): number {
    return this.#store ? performance.now() - this.#confirmedAt : 0
  }

  async #load(): Promise<ShardMap> {
    const startedAt = performance.now()
    try {
      const loaded = await this.#store?.load()
      this.#confirmedAt = Math.max(this.#confirmedAt, startedAt)
      if (loaded && loaded.epoch > this.#map.epoch) {
        this.#accept(loaded)
        this.#obs.logger.info(
          { from: this.#map.epoch, to: loaded.epoch },
          '[@scale/sharding] new shard map epoch',
        )
        this.#obs.increment('sharding_map_epoch_changes_total')
        this.#map = loaded
      }
    } catch (error) {
      this.#obs.logger.warn(
        { err: error },
        '[@scale/sharding] could not refresh the shard map; keeping the current epoch',
      )
      throw error
    }
    return this.#map
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#unwatch?.()
    this.#unwatch = undefined
  }
}

/**
 * The map a router starts with. Bounded like every later load: a hung control database runs no
 * timers, so without this `createShardedKysely()` would never settle. A late load is abandoned (it
 * ends, and frees its connection, when the store answers); the caller may simply call again.
 */
export async function loadInitialMap(
  store: ShardMapStore,
  loadTimeoutMs: number,
): Promise<ShardMap | undefined> {
  const context = { startup: true, step: 'load', mapLoadTimeoutMs: loadTimeoutMs }
  try {
    return await withTimeout(
      Promise.resolve().then(() => store.load()),
      loadTimeoutMs,
      context,
    )
  } catch (error) {
    throw storeError(error, context)
  }
}

/**
 * A store failure as the router reports it: our own errors (a map that does not parse, a timeout
 * already typed) as they are, anything else (the driver's) as `ShardMapStaleError` with it as cause.
 */
function storeError(error: unknown, context: ShardingErrorContext): ShardingError {
  if (error instanceof ShardingError) return error
  return new ShardMapStaleError({ ...context, timedOut: false }, error)
}

/**
 * `work`, or `ShardMapStaleError` (`context` plus `timedOut: true`) once `ms` have passed without
 * an answer; the work is abandoned, and its timer is cleared either way.
 */
function withTimeout<T>(work: Promise<T>, ms: number, context: ShardingErrorContext): Promise<T> {
  if (!Number.isFinite(ms)) return work
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShardMapStaleError({ ...context, timedOut: true })), ms)
    timer.unref()
  })
  work.catch(() => {}) // an abandoned load that fails later must not be an unhandled rejection
  return Promise.race([work, late]).finally(() => clearTimeout(timer))
}
