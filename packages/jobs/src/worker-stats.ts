import type { Cluster, Redis } from 'ioredis'
import { queueKey } from './connection.js'

/** @internal hash of counters every worker adds to: `finished` jobs and `busy_ms` spent in handlers. */
export function statsKey(prefix: string, queue: string): string {
  return queueKey(prefix, queue, 'scale-stats')
}

/**
 * @internal Counts finished jobs and handler time in memory and adds them to Redis every interval,
 * so the scaling signal's completion rate costs one HINCRBY pair per second, not one per job (the
 * hot path stays as fast as raw BullMQ).
 */
export class WorkerStats {
  readonly #client: Redis | Cluster
  readonly #prefix: string
  readonly #pending = new Map<string, { finished: number; busyMs: number }>()
  readonly #timer: NodeJS.Timeout

  constructor(client: Redis | Cluster, prefix: string, intervalMs: number) {
    this.#client = client
    this.#prefix = prefix
    this.#timer = setInterval(() => void this.flush().catch(() => {}), intervalMs)
    // A stats flush must never keep a process alive that has nothing else to do.
    this.#timer.unref()
  }

  record(queue: string, busyMs: number): void {
    let counts = this.#pending.get(queue)
    if (!counts) {
      counts = { finished: 0, busyMs: 0 }
      this.#pending.set(queue, counts)
    }
    counts.finished += 1
    counts.busyMs += busyMs
  }

  async flush(): Promise<void> {
    if (this.#pending.size === 0) return
    const batch = [...this.#pending.entries()]
    this.#pending.clear()
    await Promise.all(
      batch.map(([queue, counts]) =>
        this.#client
          .multi()
          .hincrby(statsKey(this.#prefix, queue), 'finished', counts.finished)
          .hincrby(statsKey(this.#prefix, queue), 'busy_ms', Math.round(counts.busyMs))
          .exec(),
      ),
    )
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
    await this.flush().catch(() => {})
  }
}
