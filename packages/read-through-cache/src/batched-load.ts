import { CacheBatchResultError } from './errors.js'
import type { FlightHooks } from './flight.js'
import type { BatchLoader } from './loader.js'
import type { LoadAbort } from './loader-call.js'

/** One `getOrLoadMany`'s collector: per-key loads in, one `batchLoader` call out. */
export interface BatchedLoad<T> {
  /** The per-key loader of a batch member: resolves with its key's value from the batch call. */
  load: (key: string) => Promise<T | undefined>
  /** The key has its value (from the batch or from another caller's load). */
  finished: (key: string) => void
  hooks: FlightHooks
}

const noop = () => {}

/**
 * Collects the per-key loader calls of one `getOrLoadMany` into one `batchLoader` call. The batch
 * goes out once every key still outstanding has either asked for its value or is waiting for
 * another caller's load (which it will get without asking) — no timer, so a slow machine cannot
 * split the batch. The batch call takes one slot of the loader cap, not one per key: per-key
 * slots would deadlock a batch larger than the cap.
 *
 * `runLoad` runs the batch call under the loader cap and its hard timeout (and counts it).
 */
export function createBatchedLoad<T>(
  batchLoader: BatchLoader<T>,
  outstanding: Set<string>,
  runLoad: <R>(load: (abort: LoadAbort) => R | Promise<R>) => Promise<R>,
): BatchedLoad<T> {
  const waiting = new Set<string>()
  let open: { keys: string[]; done: Promise<Map<string, T | undefined>>; fire: () => void } | undefined
  const check = () => {
    if (open !== undefined && open.keys.length + waiting.size >= outstanding.size) open.fire()
  }
  const start = () => {
    const keys: string[] = []
    let fire: () => void = noop
    const done = new Promise<Map<string, T | undefined>>((resolve, reject) => {
      fire = () => {
        if (open === current) open = undefined
        runLoad((abort) =>
          batchLoader([...keys], {
            get signal() {
              return abort.signal
            },
          }),
        )
          .then((result) => batchResult<T>(keys, result))
          .then(resolve, reject)
      }
    })
    const current = { keys, done, fire }
    return current
  }
  return {
    load: async (key) => {
      open ??= start()
      const current = open
      current.keys.push(key)
      check()
      return (await current.done).get(key)
    },
    finished: (key) => {
      outstanding.delete(key)
      waiting.delete(key)
      check()
    },
    hooks: {
      batched: true,
      waiting: (key, on) => {
        if (on) waiting.add(key)
        else waiting.delete(key)
        check()
      },
    },
  }
}

/** The batch loader's answer as a map by key, whichever of its two allowed shapes it came in. */
function batchResult<T>(keys: string[], result: unknown): Map<string, T | undefined> {
  if (result instanceof Map) return result as Map<string, T | undefined>
  if (Array.isArray(result) && result.length === keys.length) {
    return new Map(keys.map((key, i) => [key, result[i] as T | undefined]))
  }
  throw new CacheBatchResultError(
    keys.length,
    Array.isArray(result) ? `an array of ${result.length}` : typeof result,
  )
}
