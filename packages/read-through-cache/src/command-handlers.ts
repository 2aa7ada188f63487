import type { DeadlineHandlers } from '@scale/ioredis-coalesce'
import type { CircuitBreaker } from './circuit-breaker.js'
import { CacheTimeoutError, CacheUnavailableError } from './errors.js'

const noop = () => {}

/** Redis' reply for a command on a key that holds another type (also from inside a script). */
function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.includes('WRONGTYPE')
}

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
      // A key of the wrong type under the prefix (a foreign writer) is that key's problem: Redis
      // answered, so it does not count towards opening the circuit for every other key.
      if (isWrongType(error)) breaker.success(probe)
      else breaker.failure(Date.now(), probe)
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
