import { setTimeout as sleep } from 'node:timers/promises'
import { ServerTimeoutError } from './errors.js'

/**
 * Polls `check` until it returns a truthy value (which is returned) or `timeoutMs` passes.
 * Errors thrown by `check` count as "not yet"; the last one becomes the timeout's cause.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  {
    timeoutMs = 30_000,
    intervalMs = 50,
    giveUpIf,
  }: {
    timeoutMs?: number
    intervalMs?: number
    /** Checked before each poll: when it returns true, waiting is pointless (the server exited). */
    giveUpIf?: () => boolean
  } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    if (giveUpIf?.())
      throw new ServerTimeoutError(`${what} (gave up: the process exited)`, 0, { cause: lastError })
    try {
      const value = await check()
      if (value) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) throw new ServerTimeoutError(what, timeoutMs, { cause: lastError })
    await sleep(intervalMs)
  }
}
