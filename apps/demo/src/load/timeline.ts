/** Requests per time slice of a load phase: what a drill's chart draws. */
export interface TimelineBucket {
  /** Start of the slice, ms since the phase began. */
  t: number
  ok: number
  failed: number
  /** Mean latency of the slice's answered requests, ms. */
  meanMs: number
}

export class Timeline {
  readonly #start: number
  readonly #sliceMs: number
  readonly #ok: number[] = []
  readonly #failed: number[] = []
  readonly #latency: number[] = []
  /** Wall-clock times (ms since start) of failed requests, for the recovery time. */
  readonly failures: number[] = []

  constructor(start: number, sliceMs = 250) {
    this.#start = start
    this.#sliceMs = sliceMs
  }

  #slice(now: number): number {
    const index = Math.max(0, Math.floor((now - this.#start) / this.#sliceMs))
    while (this.#ok.length <= index) {
      this.#ok.push(0)
      this.#failed.push(0)
      this.#latency.push(0)
    }
    return index
  }

  ok(latencyMs: number, now = Date.now()): void {
    const i = this.#slice(now)
    this.#ok[i] = (this.#ok[i] ?? 0) + 1
    this.#latency[i] = (this.#latency[i] ?? 0) + latencyMs
  }

  failed(now = Date.now()): void {
    const i = this.#slice(now)
    this.#failed[i] = (this.#failed[i] ?? 0) + 1
    this.failures.push(now - this.#start)
  }

  buckets(): TimelineBucket[] {
    return this.#ok.map((ok, i) => ({
      t: i * this.#sliceMs,
      ok,
      failed: this.#failed[i] ?? 0,
      meanMs: ok > 0 ? Math.round(((this.#latency[i] ?? 0) / ok) * 100) / 100 : 0,
    }))
  }
}
