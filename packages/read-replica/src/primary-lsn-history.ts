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

  /** When the oldest recorded position in (`after`, `upTo`] was seen; undefined when none is. */
  firstSeenBetween(after: Lsn | undefined, upTo: Lsn): number | undefined {
    const index = after === undefined ? 0 : this.#firstAbove(after)
    const lsn = this.#lsns[index]
    return lsn !== undefined && lsn <= upTo ? this.#seenAt[index] : undefined
  }

  /**
   * An upper bound of how long ago the primary reached `lsn` (ms): exact for a position the
   * router recorded after its own write, otherwise since the primary was last seen below it.
   */
  ageAtMost(lsn: Lsn, now: number): number | undefined {
    const above = this.#firstAbove(lsn)
    const exact = above - 1
    if (exact >= 0 && this.#lsns[exact] === lsn) return now - (this.#seenAt[exact] as number)
    const below = this.#lsns[exact] === lsn ? exact - 1 : exact
    return below >= 0 ? now - (this.#seenAt[below] as number) : undefined
  }

  // Index of the first recorded position above `lsn` (binary search: positions only grow).
  #firstAbove(lsn: Lsn): number {
    let low = 0
    let high = this.#lsns.length
    while (low < high) {
      const mid = (low + high) >> 1
      if ((this.#lsns[mid] as Lsn) > lsn) high = mid
      else low = mid + 1
    }
    return low
  }

  /**
   * Seconds since the primary first had WAL beyond `replay`; 0 when the replica has replayed
   * everything the primary was seen at; undefined when nothing is known yet.
   */
  secondsBehind(replay: Lsn, now: number): number | undefined {
    const count = this.#lsns.length
    if (count === 0) return undefined
    if (replay >= (this.#lsns[count - 1] as Lsn)) return 0
    // the oldest recorded position beyond `replay`
    return Math.max(0, (now - (this.#seenAt[this.#firstAbove(replay)] as number)) / 1000)
  }
}
