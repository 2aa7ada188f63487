import type { RetryOptions } from './define-job.js'

/**
 * Delay before retry number `retry` (1 = the first retry): `base * 2^(retry-1)` capped at
 * `maxDelayMs`, then reduced by a random share of at most `jitter`. With jitter below 1 the
 * lowest possible next delay (`2d * (1 - jitter)`) stays at or above the highest possible current
 * one when jitter <= 0.5, so delays never shrink from one retry to the next.
 */
export function retryDelayMs(
  retry: Readonly<Required<RetryOptions>>,
  retryNumber: number,
  random = Math.random,
): number {
  const exponential = retry.baseDelayMs * 2 ** Math.max(0, retryNumber - 1)
  const capped = Math.min(retry.maxDelayMs, exponential)
  return Math.round(capped * (1 - retry.jitter * random()))
}
