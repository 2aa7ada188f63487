import { onClientReady } from './client-ready.js'
import { CacheUnavailableError } from './errors.js'
import type { RedisClient } from './redis-tier.js'

/**
 * Resolves once `client` is ready and `subscribed` (the invalidation channel) has resolved; rejects
 * with `CacheUnavailableError` after `timeoutMs`, or with whatever error is passed to the rejecter
 * registered in `waiters` meanwhile (`close()` ends waiting calls that way). A `lazyConnect`
 * client connects at its first command; this is that moment.
 */
export async function waitUntilReady(
  client: RedisClient,
  subscribed: Promise<void> | undefined,
  timeoutMs: number,
  waiters: Set<(error: Error) => void>,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  let offReady: (() => void) | undefined
  let abort: ((error: Error) => void) | undefined
  const timeout = new Promise<never>((_, reject) => {
    abort = reject
    waiters.add(reject)
    timer = setTimeout(
      () => reject(new CacheUnavailableError('ready', { reason: 'timeout', timeoutMs })),
      timeoutMs,
    )
  })
  if (client.status === 'wait') client.connect().catch(() => {})
  const connected =
    client.status === 'ready'
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          offReady = onClientReady(client, resolve)
        })
  try {
    await Promise.race([Promise.all([connected, subscribed]), timeout])
  } finally {
    clearTimeout(timer)
    if (abort !== undefined) waiters.delete(abort)
    offReady?.()
  }
}
