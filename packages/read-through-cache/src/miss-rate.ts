/** Weight of the past in the miss-rate average: about the last 100 Redis reads count. */
const MISS_RATE_DECAY = 0.99

/** Moving average of the share of Redis reads that miss (decides whether to skip the plain GET). */
export class MissRate {
  #rate = 0

  /** Most Redis reads miss lately (a cold cache, a stream of new keys). */
  get high(): boolean {
    return this.#rate > 0.5
  }

  recordHit(): void {
    this.#rate *= MISS_RATE_DECAY
  }

  recordMiss(): void {
    this.#rate = this.#rate * MISS_RATE_DECAY + (1 - MISS_RATE_DECAY)
  }
}
