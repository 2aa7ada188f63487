import type { JobsError } from './errors.js'

/**
 * @internal Settles like `work`, or rejects with `onTimeout()` after `timeoutMs`, whichever comes
 * first; `mapError` rewrites the rejection of `work` (done here, so callers need no second
 * promise layer on a hot path). `work` itself cannot be cancelled (an ioredis command sits in its
 * queue until Redis answers); its late outcome is absorbed here, so it never surfaces as an
 * unhandled rejection. The timer is not unref'd: the caller awaits this promise, so it must settle.
 */
export function withDeadline<T>(
  work: Promise<T>,
  timeoutMs: number,
  onTimeout: () => JobsError,
  mapError: (error: unknown) => unknown = (error) => error,
): Promise<T> {
  if (!Number.isFinite(timeoutMs)) return work.catch((error: unknown) => Promise.reject(mapError(error)))
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), timeoutMs)
    work.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(mapError(error))
      },
    )
  })
}
