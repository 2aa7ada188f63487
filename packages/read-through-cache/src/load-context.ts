import { assertKey } from './entry-policy.js'
import { CacheLoaderFailedError, CacheOptionsError } from './errors.js'
import type { Flight } from './flight.js'
import type { LoaderContext } from './loader.js'
import type { LoadAbort } from './loader-call.js'

/**
 * The `ctx` a loader gets. One object per load, made on every miss, so its functions live on the
 * prototype as getters: each returns a function bound to this load, made only if the loader asks
 * for it (destructuring `({ signal, setTtl }) =>` still works: the getter runs then).
 */
export class LoadContext implements LoaderContext<unknown> {
  readonly key: string
  readonly stale: unknown
  readonly #flight: Flight
  readonly #abort: LoadAbort

  constructor(flight: Flight, stale: unknown, abort: LoadAbort) {
    this.key = flight.key
    this.stale = stale
    this.#flight = flight
    this.#abort = abort
  }

  get signal(): AbortSignal {
    return this.#abort.signal
  }

  get setTtl(): (ttlMs: number) => void {
    const flight = this.#flight
    return (ttlMs) => {
      if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < 1) {
        throw new CacheOptionsError('ctx.setTtl', `expected a finite number >= 1, got ${String(ttlMs)}`)
      }
      flight.ttlMs = ttlMs
    }
  }

  get setTags(): (tags: readonly string[]) => void {
    const flight = this.#flight
    return (tags) => {
      if (!Array.isArray(tags)) throw new CacheOptionsError('ctx.setTags', 'expected an array of tags')
      for (const tag of tags) assertKey('tag', tag)
      flight.lateTags = [...new Set([...(flight.lateTags ?? []), ...tags])]
    }
  }

  get skip(): () => undefined {
    const flight = this.#flight
    return () => {
      flight.skipStore = true
      return undefined
    }
  }

  get fail(): (message?: string) => never {
    const key = this.key
    return (message) => {
      throw new CacheLoaderFailedError(key, message)
    }
  }
}
