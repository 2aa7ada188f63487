import { type Balancer, safePick } from './balancer.js'
import { type Lsn, parseLsn } from './lsn.js'
import type { ReplicaState } from './replica-state.js'

interface Waiter {
  lsn: Lsn
  skip: ReadonlySet<ReplicaState>
  resolve: (replica: ReplicaState | undefined) => void
  timer: NodeJS.Timeout
}

export interface ReplayWaitersSettings {
  readonly checkTimeoutMs: number
  readonly rywPollIntervalMs: number
  /** the replicas reads may go to now */
  readonly healthy: () => readonly ReplicaState[]
  /** a replica reported a replay position */
  readonly advance: (replica: ReplicaState, lsn: Lsn | undefined) => void
}

const REPLAY_POSITION = 'select pg_last_wal_replay_lsn()::text as replay'

/**
 * Reads waiting for a replica to replay their context's position. While anyone waits, each
 * healthy replica's replay position is polled in its own loop (a slow replica never holds up the
 * answer of a fast one), and a waiter is handed the first replica that gets there.
 */
export class ReplayWaiters {
  readonly #waiters = new Set<Waiter>()
  readonly #polling = new Set<ReplicaState>()
  readonly #balancer: Balancer
  readonly #settings: ReplayWaitersSettings
  #closed = false

  constructor(balancer: Balancer, settings: ReplayWaitersSettings) {
    this.#balancer = balancer
    this.#settings = settings
  }

  /** Resolves with a healthy replica whose replay position reached `lsn`, or undefined after `budgetMs`. */
  wait(lsn: Lsn, budgetMs: number, skip: ReadonlySet<ReplicaState>): Promise<ReplicaState | undefined> {
    if (this.#closed) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const waiter: Waiter = {
        lsn,
        skip,
        resolve,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter)
          resolve(undefined)
        }, budgetMs),
      }
      waiter.timer.unref()
      this.#waiters.add(waiter)
      for (const replica of this.#settings.healthy()) {
        if (!this.#polling.has(replica) && !skip.has(replica)) void this.#poll(replica)
      }
    })
  }

  /** Hands every waiter whose position some healthy replica has reached to one of those replicas. */
  resolve(): void {
    if (this.#waiters.size === 0) return
    const healthy = this.#settings.healthy()
    for (const waiter of this.#waiters) {
      const ready = healthy.filter(
        (replica) =>
          !waiter.skip.has(replica) && replica.replayLsn !== undefined && replica.replayLsn >= waiter.lsn,
      )
      if (ready.length === 0) continue
      clearTimeout(waiter.timer)
      this.#waiters.delete(waiter)
      waiter.resolve(safePick(this.#balancer, ready))
    }
  }

  close(): void {
    this.#closed = true
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer)
      waiter.resolve(undefined)
    }
    this.#waiters.clear()
  }

  // One loop per replica for all waiting reads: a cheap position query per interval, however many wait.
  async #poll(replica: ReplicaState): Promise<void> {
    this.#polling.add(replica)
    try {
      while (this.#waiters.size > 0 && !this.#closed && replica.healthy) {
        try {
          const {
            rows: [row],
          } = await replica.node.queryWithin<{ replay: string | null }>(
            REPLAY_POSITION,
            [],
            this.#settings.checkTimeoutMs,
            `replay position of ${replica.name}`,
          )
          this.#settings.advance(replica, parseLsn(row?.replay))
          this.resolve()
        } catch {
          return // the regular check decides about health; a waiter falls back to the primary
        }
        if (this.#waiters.size > 0) await sleep(this.#settings.rywPollIntervalMs)
      }
    } finally {
      this.#polling.delete(replica)
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
