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

  async start(refreshIntervalMs: number): Promise<void> {
    if (!this.#store) return
    if (refreshIntervalMs > 0) {
      this.#timer = setInterval(() => void this.refresh().catch(() => {}), refreshIntervalMs)
      this.#timer.unref()
    }
    if (this.#store.watch) this.#unwatch = await this.#store.watch(() => void this.refresh().catch(() => {}))
  }

  /**
   * Loads the stored map; adopts it if its epoch is newer. Concurrent calls share one load. A
   * load that has not answered within `loadTimeoutMs` (a hung store runs no timers, so a server
   * side timeout cannot end it) is given up: the call rejects and the next call starts afresh.
   */
  refresh(): Promise<ShardMap> {
    if (!this.#store) return Promise.resolve(this.#map)
    if (!this.#inflight) {
      const load: Promise<ShardMap> = withTimeout(this.#load(), this.#loadTimeoutMs).finally(() => {
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
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#unwatch?.()
    this.#unwatch = undefined
  }
}

/** `work`, or a rejection once `ms` have passed without an answer (the work is abandoned). */
function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  if (!Number.isFinite(ms)) return work
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the map store did not answer within ${ms} ms (mapLoadTimeoutMs)`)),
      ms,
    )
    timer.unref()
  })
  work.catch(() => {}) // an abandoned load that fails later must not be an unhandled rejection
  return Promise.race([work, late]).finally(() => clearTimeout(timer))
}
