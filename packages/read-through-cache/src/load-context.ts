import { assertKey } from './entry-policy.js'
import { CacheLoaderFailedError, CacheOptionsError } from './errors.js'
import type { Flight } from './flight.js'
import type { LoaderContext } from './loader.js'
import type { LoadAbort } from './loader-call.js'

/**
 * The `ctx` a loader gets: a plain object whose functions are its own properties bound to this
 * load, so it can be destructured, spread (`{ ...ctx }`) or passed on in pieces. `signal` is a
 * getter: its `AbortController` is made only if the loader reads it.
 */
export function loadContext(flight: Flight, stale: unknown, abort: LoadAbort): LoaderContext<unknown> {
  return {
    key: flight.key,
    stale,
    get signal() {
      return abort.signal
    },
    setTtl: (ttlMs) => {
      if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < 1) {
        throw new CacheOptionsError('ctx.setTtl', `expected a finite number >= 1, got ${String(ttlMs)}`)
      }
      flight.ttlMs = ttlMs
    },
    setTags: (tags) => {
      if (!Array.isArray(tags)) throw new CacheOptionsError('ctx.setTags', 'expected an array of tags')
      for (const tag of tags) assertKey('tag', tag)
      flight.lateTags = [...new Set([...(flight.lateTags ?? []), ...tags])]
    },
    skip: () => {
      flight.skipStore = true
      return undefined
    },
    fail: (message) => {
      throw new CacheLoaderFailedError(flight.key, message)
    },
  }
}
