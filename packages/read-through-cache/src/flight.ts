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
  /** Redis reads this flight has sent that may decide its answer; a joiner notes the count when it joins. */
  sends: number
  /**
   * Joiners that noted fewer `sends` than this may take the flight's answer: they joined before the
   * Redis command that proved the answer still current was sent. 0 when a write voided the flight's
   * lease (nobody who joined may take it); `Infinity` on paths with no lease to check (an outage).
   */
  validBefore: number
  /** The answer shared by the joiners that noted `joinVerdictAt` sends (see `Flights.attach`). */
  joinVerdict: Promise<unknown> | undefined
  joinVerdictAt: number
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
 * predates it (and may predate an invalidation). A class, not a closure per method: one is made
 * on every miss.
 */
class RunningFlight implements Flight {
  hooks: FlightHooks | undefined
  token: string | undefined = undefined
  invalidated = false
  answered = false
  ttlMs: number | undefined = undefined
  lateTags: string[] | undefined = undefined
  startedAt = Date.now()
  skipStore = false
  replacesFresh = false
  callers: number
  servedStale = false
  sends = 0
  validBefore = Number.POSITIVE_INFINITY
  joinVerdict: Promise<unknown> | undefined = undefined
  joinVerdictAt = -1
  readonly promise: Promise<unknown>
  done: Promise<void> = Promise.resolve()
  readonly #settle: { resolve: (value: unknown) => void; reject: (error: unknown) => void }
  readonly #detach: (flight: Flight) => void

  constructor(
    readonly key: string,
    hooks: FlightHooks | undefined,
    detach: (flight: Flight) => void,
    callers: number,
  ) {
    this.hooks = hooks
    this.callers = callers
    this.#detach = detach
    let settle: { resolve: (value: unknown) => void; reject: (error: unknown) => void } | undefined
    this.promise = new Promise<unknown>((resolve, reject) => {
      settle = { resolve, reject }
    })
    this.#settle = settle as { resolve: (value: unknown) => void; reject: (error: unknown) => void }
    // A flight may be rejected with no caller left waiting (all were served stale): never unhandled.
    this.promise.catch(noop)
  }

  resolve(value: unknown): void {
    this.#detach(this)
    this.answered = true
    this.#settle.resolve(value)
  }

  reject(error: unknown): void {
    this.#detach(this)
    this.answered = true
    this.#settle.reject(error)
  }

  answer(value: unknown): void {
    this.answered = true
    this.#settle.resolve(value)
  }
}

/** A flight not yet running (see `RunningFlight`). */
export function createFlight(
  key: string,
  hooks: FlightHooks | undefined,
  detach: (flight: Flight) => void,
  callers: number,
): Flight {
  return new RunningFlight(key, hooks, detach, callers)
}
