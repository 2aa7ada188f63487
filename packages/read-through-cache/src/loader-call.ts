import { deadlineQueue } from '@scale/ioredis-coalesce'
import type { Policy } from './entry-policy.js'
import { CacheLoaderTimeoutError } from './errors.js'
import type { Flight } from './flight.js'
import { loadContext } from './load-context.js'
import { type EndLoadSpan, traceLoad } from './load-tracing.js'
import type { Loader } from './loader.js'
import type { LocalEntry } from './local-tier.js'
import type { Semaphore } from './semaphore.js'

/**
 * The abort side of one loader call. The `AbortController` is made only when the loader reads
 * `signal` or the call times out: creating one per load cost a tenth of the miss path's CPU.
 */
export class LoadAbort {
  #controller: AbortController | undefined
  #reason: unknown

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#reason !== undefined) this.#controller.abort(this.#reason)
    }
    return this.#controller.signal
  }

  abort(reason: unknown): void {
    this.#reason = reason
    this.#controller?.abort(reason)
  }
}

/** Runs a loader call under the process-wide cap and the hard timeout; `what` names it in the timeout error. */
export type RunLoad = <R>(
  what: string,
  timeoutMs: number,
  load: (abort: LoadAbort) => R | Promise<R>,
  batchSize?: number,
) => Promise<R>

/**
 * The `RunLoad` of a cache: a loader call (one key's or a whole batch's) runs under the
 * process-wide cap and is counted. At `timeoutMs` (from the call: a wait for a slot counts) its
 * signal aborts with a `CacheLoaderTimeoutError`, which is also what the call rejects with, and
 * the slot is freed even if the loader never settles. One promise and one deadline entry per call,
 * no listener: this is on every miss.
 */
export function createRunLoad(loads: Semaphore, onLoad: () => void, prefix: string): RunLoad {
  return <R>(
    what: string,
    timeoutMs: number,
    load: (abort: LoadAbort) => R | Promise<R>,
    batchSize?: number,
  ) =>
    new Promise<R>((resolve, reject) => {
      const abort = new LoadAbort()
      let holding = false
      let settled = false
      let endSpan: EndLoadSpan | undefined
      // `failed` apart from `error`: a loader may throw `undefined`.
      const settle = (failed = false, error?: unknown): boolean => {
        if (settled) return false
        settled = true
        deadlines.settle(deadline)
        endSpan?.(failed, error)
        if (holding) loads.release()
        else loads.cancel(start)
        return true
      }
      const start = () => {
        holding = true
        onLoad()
        let result: R | Promise<R>
        try {
          ;[result, endSpan] = traceLoad({ what, prefix, batchSize }, () => load(abort))
        } catch (error) {
          if (settle()) reject(error)
          return
        }
        Promise.resolve(result).then(
          (value) => settle() && resolve(value),
          (error: unknown) => settle(true, error) && reject(error),
        )
      }
      // The loads with one timeout share one timer, instead of a setTimeout and clearTimeout per
      // load. It keeps the process alive while a load is pending: a caller (or close()) awaiting a
      // loader that never settles must still get its timeout when nothing else holds the process
      // (a memory-only cache has no socket); at the latest `timeoutMs` after the last load.
      const deadlines = deadlineQueue(timeoutMs, KEEP_ALIVE)
      const deadline = deadlines.add(() => {
        const error = new CacheLoaderTimeoutError(what, timeoutMs)
        if (!settle(true, error)) return
        abort.abort(error)
        reject(error)
      })
      loads.acquire(start)
    })
}

const KEEP_ALIVE = { keepAlive: true }

/** The abort of a batch member's own loader (the batch call has the real one): never aborted. */
const NEVER_ABORTED = new LoadAbort()

/**
 * Calls the flight's loader with its context (`setTtl`, `skip`, `fail`, `signal`), under the cap
 * and hard timeout, and arms the soft timeout: after `loaderSoftTimeoutMs` the callers get the
 * stale value (if it is still within the SWR or grace window) through `answerStale`; the load goes
 * on and writes when it finishes, so the next callers get its value.
 */
export function callLoader(
  flight: Flight,
  loader: Loader<unknown>,
  stale: LocalEntry | undefined,
  policy: Policy,
  runLoad: RunLoad,
  answerStale: (flight: Flight, value: unknown) => void,
): Promise<unknown> {
  const staleValue = stale?.negative === false ? stale.value : undefined
  // A batch member's loader only joins the batch; the batch call itself takes the cap slot and
  // carries the hard timeout.
  const loading = flight.hooks?.batched
    ? Promise.resolve(loader(loadContext(flight, staleValue, NEVER_ABORTED)))
    : runLoad(flight.key, policy.loaderHardTimeoutMs, (abort) =>
        loader(loadContext(flight, staleValue, abort)),
      )
  if (policy.loaderSoftTimeoutMs > 0 && stale !== undefined) {
    const timer = setTimeout(() => {
      const window = Math.max(policy.staleWhileRevalidateMs, policy.gracePeriodMs)
      if (flight.answered || Date.now() >= stale.freshUntil + window) return
      answerStale(flight, stale.value)
    }, policy.loaderSoftTimeoutMs)
    timer.unref()
    loading.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    )
  }
  return loading
}

/** The policy of the entry a load writes: `ctx.setTtl` overrides the TTL, `ctx.setTags` adds tags. */
export function effectivePolicy(policy: Policy, flight: Flight): Policy {
  if (flight.ttlMs === undefined && flight.lateTags === undefined) return policy
  return {
    ...policy,
    ttlMs: flight.ttlMs ?? policy.ttlMs,
    tags: flight.lateTags === undefined ? policy.tags : [...new Set([...policy.tags, ...flight.lateTags])],
  }
}

// Frozen: shared by every load, so a push would throw instead of leaking into other loads.
const NO_TAGS = Object.freeze([]) as unknown as string[]

/** The tags `ctx.setTags` added that the call did not already have. */
export function lateTagsOf(policy: Policy, flight: Flight): string[] {
  return flight.lateTags?.filter((tag) => !policy.tags.includes(tag)) ?? NO_TAGS
}
