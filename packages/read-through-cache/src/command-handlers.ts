import type { DeadlineHandlers } from '@scale/ioredis-coalesce'
import type { CircuitBreaker } from './circuit-breaker.js'
import { CacheTimeoutError, CacheUnavailableError } from './errors.js'

const noop = () => {}

/**
 * What a Redis command's deadline does with each outcome: a timeout or failure counts for the
 * breaker and becomes a `CacheUnavailableError`, a reply closes the breaker (unless `deferSuccess`:
 * a replay before a probe must not close the circuit by itself, the command after it does).
 * No per-command state, so the tier reuses one per command name on the hot path.
 */
export function commandHandlers(
  name: string,
  probe: boolean,
  deferSuccess: boolean,
  breaker: CircuitBreaker,
  onError: (error: unknown) => void,
): DeadlineHandlers {
  return {
    timeoutError: (timeoutMs) => new CacheTimeoutError(name, timeoutMs),
    failed: (error) => {
      breaker.failure(Date.now(), probe)
      onError(error)
      return error instanceof CacheUnavailableError
        ? error
        : new CacheUnavailableError(
            name,
            { reason: error instanceof CacheTimeoutError ? 'timeout' : 'error' },
            error,
          )
    },
    succeeded: deferSuccess ? noop : () => breaker.success(probe),
  }
}
