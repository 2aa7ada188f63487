import { setTimeout as sleep } from 'node:timers/promises'
import {
  CdnClosedError,
  CdnOptionsError,
  CdnUrlError,
  PurgeFailedError,
  PurgeUnsupportedError,
} from './errors.js'
import { type Logger, type MetricsHook, Observability, SOURCE } from './observability.js'
import { isRetryable, PurgeHttpStatusError } from './purge-http.js'

/** One CDN's purge API. Write your own for another provider; `createPurger` adds batching and retries. */
export interface PurgeAdapter {
  /** For logs, metrics and errors: `'varnish'`, `'fastly'`, ... */
  readonly name: string
  /** Most items one request may carry. */
  readonly maxBatch: { urls: number; keys: number }
  /** Purges these absolute URLs in one go (one request, or a few in parallel). */
  purgeUrls?(urls: readonly string[], signal: AbortSignal): Promise<void>
  /** Purges everything tagged with one of these surrogate keys. */
  purgeKeys?(keys: readonly string[], signal: AbortSignal): Promise<void>
}

/** Options of {@link createPurger}. */
export interface PurgerOptions {
  adapter: PurgeAdapter
  /**
   * Attempts after the first, for network errors, timeouts, 429 and 5xx (never for other 4xx).
   * @default 3
   */
  retries?: number
  /**
   * First backoff; doubles per attempt, with full jitter, capped by `maxDelayMs`. A `Retry-After` is honoured.
   * @default 200
   */
  baseDelayMs?: number
  /**
   * Longest wait between two attempts. A `Retry-After` longer than this fails the batch at once
   * with {@link PurgeFailedError} (`context.retryAfterMs` says when the provider will take it).
   * @default 5_000
   */
  maxDelayMs?: number
  /**
   * Bounds one request to the provider.
   * @default 10_000
   */
  requestTimeoutMs?: number
  /**
   * Log and return the batches that would be sent, send nothing.
   * @default false
   */
  dryRun?: boolean
  /** pino-compatible logger. Silent by default. */
  logger?: Logger
  /** Metrics hook: `cdn_purge_requests_total{provider,kind,result}`, `cdn_purge_items_total{provider,kind}`. */
  metrics?: MetricsHook
}

/** What one purge call did. */
export interface PurgeResult {
  kind: 'urls' | 'keys'
  /** Distinct items purged (or that would be, in a dry run). */
  items: number
  /** The batches, in order: one provider request each (a few for Varnish URLs). */
  batches: string[][]
  /** Requests sent, retries included (0 in a dry run). */
  requests: number
  dryRun: boolean
}

/** Purges through one provider with batching, retries with backoff, and a dry run. */
export interface Purger {
  /** Purges absolute URLs (as `cdn.url()` built them). */
  purgeUrls(urls: readonly string[]): Promise<PurgeResult>
  /** Purges by surrogate key / cache tag. */
  purgeKeys(keys: readonly string[]): Promise<PurgeResult>
  /** Aborts retries in progress (they reject with {@link PurgeFailedError}); later calls throw {@link CdnClosedError}. */
  close(): Promise<void>
}

/** Node's timers hold a signed 32-bit ms count; beyond it they fire after 1 ms (TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1

function batchesOf(items: readonly string[], size: number): string[][] {
  const batches: string[][] = []
  for (let i = 0; i < items.length; i += size) batches.push(items.slice(i, i + size))
  return batches
}

class PurgerImpl implements Purger {
  readonly #adapter: PurgeAdapter
  readonly #retries: number
  readonly #baseDelayMs: number
  readonly #maxDelayMs: number
  readonly #timeoutMs: number
  readonly #dryRun: boolean
  readonly #observability: Observability
  readonly #closing = new AbortController()

  constructor(options: PurgerOptions) {
    if (!options.adapter) throw new CdnOptionsError('adapter', 'is required')
    this.#adapter = options.adapter
    this.#retries = options.retries ?? 3
    this.#baseDelayMs = options.baseDelayMs ?? 200
    this.#maxDelayMs = options.maxDelayMs ?? 5_000
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000
    this.#dryRun = options.dryRun ?? false
    if (!Number.isInteger(this.#retries) || this.#retries < 0)
      throw new CdnOptionsError('retries', 'must be an integer ≥ 0')
    for (const [option, value] of [
      ['baseDelayMs', this.#baseDelayMs],
      ['maxDelayMs', this.#maxDelayMs],
    ] as const) {
      if (!(value >= 0 && value <= MAX_TIMER_MS)) {
        throw new CdnOptionsError(option, `must be between 0 and ${MAX_TIMER_MS} ms`)
      }
    }
    if (!(this.#timeoutMs > 0 && this.#timeoutMs <= MAX_TIMER_MS))
      throw new CdnOptionsError('requestTimeoutMs', `must be positive and at most ${MAX_TIMER_MS} ms`)
    this.#observability = new Observability(options.logger, options.metrics, SOURCE)
  }

  purgeUrls(urls: readonly string[]): Promise<PurgeResult> {
    return this.#purge('urls', urls)
  }

  purgeKeys(keys: readonly string[]): Promise<PurgeResult> {
    return this.#purge('keys', keys)
  }

  async #purge(kind: 'urls' | 'keys', items: readonly string[]): Promise<PurgeResult> {
    if (this.#closing.signal.aborted) throw new CdnClosedError(kind === 'urls' ? 'purgeUrls' : 'purgeKeys')
    const adapter = this.#adapter
    const run = kind === 'urls' ? adapter.purgeUrls?.bind(adapter) : adapter.purgeKeys?.bind(adapter)
    if (!run) throw new PurgeUnsupportedError(adapter.name, kind === 'urls' ? 'by URL' : 'by surrogate key')
    const distinct = [...new Set(items)]
    const batches = batchesOf(
      distinct,
      Math.max(1, kind === 'urls' ? adapter.maxBatch.urls : adapter.maxBatch.keys),
    )
    const result: PurgeResult = { kind, items: distinct.length, batches, requests: 0, dryRun: this.#dryRun }
    if (this.#dryRun) {
      this.#observability.logger.info(
        { provider: adapter.name, kind, batches },
        `[@scale/cdn-url] dry run: would purge ${distinct.length} ${kind} in ${batches.length} requests`,
      )
      return result
    }
    for (const batch of batches) {
      result.requests += await this.#sendWithRetries(kind, batch, run)
    }
    this.#observability.increment('cdn_purge_items_total', { provider: adapter.name, kind }, distinct.length)
    return result
  }

  /** Sends one batch; returns the number of attempts. */
  async #sendWithRetries(
    kind: 'urls' | 'keys',
    batch: string[],
    run: (items: readonly string[], signal: AbortSignal) => Promise<void>,
  ): Promise<number> {
    const provider = this.#adapter.name
    for (let attempt = 0; ; attempt++) {
      const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(this.#timeoutMs)])
      try {
        await run(batch, signal)
        this.#observability.increment('cdn_purge_requests_total', { provider, kind, result: 'ok' })
        return attempt + 1
      } catch (error) {
        this.#observability.increment('cdn_purge_requests_total', { provider, kind, result: 'error' })
        if (error instanceof CdnUrlError) throw error
        const last = attempt >= this.#retries || !isRetryable(error) || this.#closing.signal.aborted
        if (last) throw new PurgeFailedError(provider, kind, batch, error)
        const backoff = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** attempt)
        const retryAfter = error instanceof PurgeHttpStatusError ? (error.retryAfterMs ?? 0) : 0
        // A provider that asks for a longer wait than we may sleep is not hammered earlier, and
        // the caller is not held for an hour: fail now and say when it may be tried again.
        if (retryAfter > this.#maxDelayMs) {
          throw new PurgeFailedError(provider, kind, batch, error, { retryAfterMs: retryAfter })
        }
        const delay = Math.max(retryAfter, Math.random() * backoff) // full jitter
        this.#observability.logger.warn(
          { provider, kind, attempt: attempt + 1, delayMs: Math.round(delay), err: error },
          '[@scale/cdn-url] purge request failed; retrying',
        )
        try {
          await sleep(delay, undefined, { signal: this.#closing.signal })
        } catch {
          throw new PurgeFailedError(provider, kind, batch, error)
        }
      }
    }
  }

  async close(): Promise<void> {
    this.#closing.abort()
  }
}

/**
 * Purges through one provider's adapter, with batching (by the provider's limits), retries with
 * exponential backoff and jitter for transient failures, and a dry run.
 *
 * @example
 * ```ts
 * import { createPurger, varnishPurge } from '@scale/cdn-url/purge'
 *
 * const purger = createPurger({ adapter: varnishPurge({ url: 'http://127.0.0.1:6081' }) })
 * await purger.purgeKeys(['js/app.js'])
 * await purger.purgeUrls([cdn.url('favicon.ico')])
 * ```
 */
export function createPurger(options: PurgerOptions): Purger {
  return new PurgerImpl(options)
}
