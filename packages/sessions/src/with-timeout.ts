import { SessionStoreUnavailableError } from './errors.js'

/**
 * Runs one Redis call with a deadline. ioredis queues commands while it reconnects (and retries
 * them up to `maxRetriesPerRequest` times), so without a deadline a request would hang for as
 * long as Redis is down; with it the request fails fast and the web server keeps serving.
 */
export async function withRedisDeadline<T>(
  operation: string,
  timeoutMs: number,
  call: () => Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    return await Promise.race([call(), deadline])
  } catch (error) {
    throw new SessionStoreUnavailableError(operation, error)
  } finally {
    clearTimeout(timer)
  }
}
