import type { Observability } from './observability.js'

/** Where rendered URLs point. */
export type ServingFrom = 'edge' | 'origin'

/** Options of the edge health check (the `health` option of `createCdn`). */
export interface HealthCheckOptions {
  /**
   * URL probed on the edge: any answer below 500 within `timeoutMs` counts as up.
   * Ignored when `check` is given.
   */
  url?: string
  /** Your own probe instead of `url`: resolve `true` when the edge is up. */
  check?: (signal: AbortSignal) => Promise<boolean>
  /**
   * Time between probes; 0 starts no timer (call `cdn.checkHealth()` yourself).
   * @default 10_000
   */
  intervalMs?: number
  /**
   * A probe that has not answered by then counts as failed.
   * @default 2_000
   */
  timeoutMs?: number
  /**
   * Consecutive failed probes before URLs switch to the origin.
   * @default 3
   */
  failuresToSwitch?: number
  /**
   * Consecutive good probes before URLs switch back to the edge.
   * @default 3
   */
  successesToRecover?: number
}

/**
 * Hysteresis between edge and origin: one failed probe does not move traffic, nor does one good
 * probe bring it back; a flapping edge therefore does not flip every rendered page.
 */
export class HealthSwitch {
  readonly #options: Required<
    Pick<HealthCheckOptions, 'timeoutMs' | 'failuresToSwitch' | 'successesToRecover'>
  > &
    HealthCheckOptions
  readonly #observability: Observability
  #state: ServingFrom = 'edge'
  #failures = 0
  #successes = 0
  #timer: NodeJS.Timeout | undefined
  #inFlight: Promise<ServingFrom> | undefined
  readonly #closing = new AbortController()

  constructor(options: HealthCheckOptions, observability: Observability) {
    this.#options = { timeoutMs: 2_000, failuresToSwitch: 3, successesToRecover: 3, ...options }
    this.#observability = observability
    const interval = options.intervalMs ?? 10_000
    if (interval > 0) {
      this.#timer = setInterval(() => {
        this.check().catch(() => {}) // check() never rejects; belt and braces for a timer
      }, interval)
      // A health check must not keep the process alive on its own.
      this.#timer.unref()
    }
  }

  get state(): ServingFrom {
    return this.#state
  }

  /** Runs one probe (joining one already running) and returns where URLs point afterwards. */
  check(): Promise<ServingFrom> {
    this.#inFlight ??= this.#probe().finally(() => {
      this.#inFlight = undefined
    })
    return this.#inFlight
  }

  async #probe(): Promise<ServingFrom> {
    const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(this.#options.timeoutMs)])
    let up: boolean
    try {
      up = this.#options.check
        ? await this.#options.check(signal)
        : await probeUrl(this.#options.url as string, signal)
    } catch {
      up = false
    }
    if (this.#closing.signal.aborted) return this.#state
    this.#observability.increment('cdn_health_probes_total', { result: up ? 'up' : 'down' })
    if (up) {
      this.#failures = 0
      this.#successes++
      if (this.#state === 'origin' && this.#successes >= this.#options.successesToRecover)
        this.#switch('edge')
    } else {
      this.#successes = 0
      this.#failures++
      if (this.#state === 'edge' && this.#failures >= this.#options.failuresToSwitch) this.#switch('origin')
    }
    return this.#state
  }

  #switch(to: ServingFrom): void {
    this.#state = to
    this.#observability.increment('cdn_fallback_switches_total', { to })
    const log = to === 'origin' ? this.#observability.logger.warn : this.#observability.logger.info
    log.call(
      this.#observability.logger,
      { servingFrom: to },
      to === 'origin'
        ? '[@scale/cdn-url] the edge failed its health checks: URLs now point at the origin'
        : '[@scale/cdn-url] the edge is healthy again: URLs point at the edge',
    )
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
    this.#closing.abort()
    await this.#inFlight?.catch(() => {})
  }
}

async function probeUrl(url: string, signal: AbortSignal): Promise<boolean> {
  const response = await fetch(url, { signal, redirect: 'manual', headers: { 'cache-control': 'no-cache' } })
  await response.body?.cancel()
  return response.status < 500
}
