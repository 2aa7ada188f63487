import type { CacheCounters } from './cache-counters.js'
import type { Policy } from './entry-policy.js'
import { createFlight, type Flight, type FlightHooks } from './flight.js'
import type { FlightLoader } from './flight-loader.js'
import type { LeaseTokens } from './lease-tokens.js'
import type { Loader } from './loader.js'
import type { LocalEntry } from './local-tier.js'
import type { LocalView } from './local-view.js'

/** A joiner's verdict: the flight's answer may predate its call. */
const READ_AGAIN: unique symbol = Symbol('read again')

/** The flight's answer for those who joined when it had sent `joinedAt` reads, or `READ_AGAIN`. */
async function confirmed(flight: Flight, joinedAt: number): Promise<unknown> {
  let failed = false
  const outcome = await flight.promise.catch((error: unknown) => {
    failed = true
    return error
  })
  // A stale answer is the policy's (SWR or grace), not a claim that the value is current.
  if (!flight.servedStale) {
    await flight.done
    if (joinedAt >= flight.validBefore) return READ_AGAIN
  }
  if (failed) throw outcome
  return outcome
}

/** How a flight starts: what it may serve meanwhile and who waits on it. */
export interface FlightStart {
  /** The local tier's stale copy, served within the policy's SWR window and grace. */
  localStale?: LocalEntry | undefined
  /** Redis failed just now: load without asking it (no second timeout). */
  skipRedis?: boolean
  hooks?: FlightHooks | undefined
  /** Callers waiting on the flight's promise; 0 for a background refresh. @default 1 */
  callers?: number
}

/** Starts, joins and retires the flights of this process (one load per key at a time). */
export class Flights {
  readonly #view: LocalView
  readonly #loader: FlightLoader
  readonly #tokens: LeaseTokens
  readonly #counters: CacheCounters

  constructor(view: LocalView, loader: FlightLoader, tokens: LeaseTokens, counters: CacheCounters) {
    this.#view = view
    this.#loader = loader
    this.#tokens = tokens
    this.#counters = counters
  }

  start(key: string, loader: Loader<unknown>, policy: Policy, start: FlightStart = {}): Flight {
    const view = this.#view
    const detach = (flight: Flight) => {
      if (view.flights.get(key) === flight) view.flights.delete(key)
    }
    const flight = createFlight(key, start.hooks, detach, start.callers ?? 1)
    view.flights.set(key, flight)
    view.running.add(flight)
    flight.done = this.#run(flight, loader, policy, start, detach)
    return flight
  }

  async #run(
    flight: Flight,
    loader: Loader<unknown>,
    policy: Policy,
    start: FlightStart,
    detach: (flight: Flight) => void,
  ): Promise<void> {
    try {
      await this.#loader.load(flight, loader, policy, start.localStale, start.skipRedis ?? false)
    } catch (error) {
      flight.reject(error)
    } finally {
      detach(flight)
      this.#view.running.delete(flight)
      if (flight.token !== undefined) this.#tokens.retire(flight.token)
    }
  }

  /**
   * The running flight of `key` as one more caller's promise, if there is one. `retry` is the
   * caller's own read, made if the flight's answer turns out to predate the call (see `attach`).
   */
  join(key: string, retry: () => Promise<unknown>): Promise<unknown> | undefined {
    const running = this.#view.flights.get(key)
    if (running === undefined) return undefined
    this.#counters.count('coalescedWaits')
    return this.attach(running, retry)
  }

  /**
   * One more caller waits on `flight`; if its answer was already a stale value, this caller gets
   * that too. Otherwise the caller takes the flight's answer only if the flight proved it current
   * after the caller joined: the lease still stood when the value was written (or the reply that
   * decided it was sent after the join). Else another process wrote the key meanwhile, possibly
   * before this call began, and the caller reads again with `retry`.
   */
  attach(flight: Flight, retry: () => Promise<unknown>): Promise<unknown> {
    flight.callers++
    if (flight.servedStale) {
      this.#counters.stale(flight.key)
      return flight.promise
    }
    // Joiners between two reads of the flight share one verdict: one promise chain per flight, not per caller.
    if (flight.joinVerdict === undefined || flight.joinVerdictAt !== flight.sends) {
      flight.joinVerdictAt = flight.sends
      flight.joinVerdict = confirmed(flight, flight.sends)
    }
    return flight.joinVerdict.then((value) => {
      if (value !== READ_AGAIN) return value
      this.#counters.count('joinsRetried')
      return retry()
    })
  }

  /**
   * Starts one background refresh of a value about to expire (unless a load of the key already
   * runs here): it takes the lease over the still-fresh value, so one process in the fleet
   * refreshes, and the new value replaces the old one in every local tier.
   */
  refreshEarly(key: string, loader: Loader<unknown>, policy: Policy, current: LocalEntry): void {
    if (this.#view.closed || this.#view.flights.has(key)) return
    const flight = this.start(
      key,
      loader,
      { ...policy, refreshEarly: true },
      { localStale: current, callers: 0 },
    )
    flight.replacesFresh = true
  }
}
