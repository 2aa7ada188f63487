/** One load of one key in this process, which concurrent callers of the same key join. */
export interface Flight {
  key: string
  hooks: FlightHooks | undefined
  /** The lease token this flight asks for or holds. */
  token: string | undefined
  /** Set when the key is invalidated while the flight runs: its result must then not enter the local tier. */
  invalidated: boolean
  /** Set by the loader through `ctx.setTtl`: the TTL of the entry this load writes. */
  ttlMs: number | undefined
  /** Set by the loader through `ctx.setTags`: tags of the entry this load writes, not known before it. */
  lateTags: string[] | undefined
  /** When the flight started (this process's clock): `ctx.setTags` judges racing `deleteByTag`s from it. */
  startedAt: number
  /** Set by the loader through `ctx.skip()`: what it returns is not cached. */
  skipStore: boolean
  /** The load replaces a value that was still fresh (it failed `checkValue`): tell the other local tiers. */
  replacesFresh: boolean
  /** The callers have their answer (a value, an error, or a stale value while the load goes on). */
  answered: boolean
  /** Callers waiting on `promise` (a background refresh has none): `staleServed` counts callers. */
  callers: number
  /** The callers were answered with a stale value: a caller joining now gets it too. */
  servedStale: boolean
  promise: Promise<unknown>
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
  /** Resolves the callers' promise but keeps the flight joinable (a write is still under way). */
  answer: (value: unknown) => void
  /** Settles when the flight's work (including a background refresh or a write) is over; never rejects. */
  done: Promise<void>
}

/** How `getOrLoadMany` follows its per-key flights. */
export interface FlightHooks {
  /** The loader is a batch member: call it without taking a slot of the loader cap (the batch takes one). */
  batched: boolean
  /** The flight starts or stops waiting for another caller's load. */
  waiting: (key: string, on: boolean) => void
}

const noop = () => {}

/**
 * A flight not yet running. `detach` is called when it is answered for good: once answered, a
 * flight is no longer joinable, since a call made after an answer must not get an answer that
 * predates it (and may predate an invalidation).
 */
export function createFlight(
  key: string,
  hooks: FlightHooks | undefined,
  detach: (flight: Flight) => void,
  callers: number,
): Flight {
  let settle: { resolve: (value: unknown) => void; reject: (error: unknown) => void } | undefined
  const promise = new Promise<unknown>((resolve, reject) => {
    settle = { resolve, reject }
  })
  // A flight may be rejected with no caller left waiting (all were served stale): never unhandled.
  promise.catch(noop)
  const flight: Flight = {
    key,
    hooks,
    token: undefined,
    invalidated: false,
    answered: false,
    ttlMs: undefined,
    lateTags: undefined,
    startedAt: Date.now(),
    skipStore: false,
    replacesFresh: false,
    callers,
    servedStale: false,
    promise,
    resolve: (value) => {
      detach(flight)
      flight.answered = true
      settle?.resolve(value)
    },
    reject: (error) => {
      detach(flight)
      flight.answered = true
      settle?.reject(error)
    },
    answer: (value) => {
      flight.answered = true
      settle?.resolve(value)
    },
    done: Promise.resolve(),
  }
  return flight
}
