import type { Lsn } from './lsn.js'

const CAPACITY = 512

/**
 * When the monitor first saw the primary at each WAL position. A replica's lag in seconds is
 * then the age of the oldest position it has not replayed yet: time during which there was WAL
 * to replay. An idle primary writes no WAL, so idle time never counts as lag (the server's
 * `now() - pg_last_xact_replay_timestamp()` does count it, and after a restart that replays old
 * commits it reads minutes of "lag" on a replica that is fully caught up).
 */
export class PrimaryLsnHistory {
  readonly #lsns: Lsn[] = []
  readonly #seenAt: number[] = []

  /** A primary check saw `lsn` at `now` (ms); only new, higher positions are kept. */
  record(lsn: Lsn, now: number): void {
    const last = this.#lsns[this.#lsns.length - 1]
    if (last !== undefined && lsn <= last) return
    this.#lsns.push(lsn)
    this.#seenAt.push(now)
    if (this.#lsns.length > CAPACITY) {
      this.#lsns.shift()
      this.#seenAt.shift()
    }
  }

  /**
   * Seconds since the primary first had WAL beyond `replay`; 0 when the replica has replayed
   * everything the primary was seen at; undefined when nothing is known yet.
   */
  secondsBehind(replay: Lsn, now: number): number | undefined {
    const count = this.#lsns.length
    if (count === 0) return undefined
    if (replay >= (this.#lsns[count - 1] as Lsn)) return 0
    // The oldest recorded position beyond `replay` (binary search: positions only grow).
    let low = 0
    let high = count - 1
    while (low < high) {
      const mid = (low + high) >> 1
      if ((this.#lsns[mid] as Lsn) > replay) high = mid
      else low = mid + 1
    }
    return Math.max(0, (now - (this.#seenAt[low] as number)) / 1000)
  }
}
