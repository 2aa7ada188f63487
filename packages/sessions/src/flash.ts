import type { Session, SessionData } from './session.js'

/** The session field flash messages live in: connect-flash's, so both read the same messages. */
const FLASH_FIELD = 'flash'

type FlashStore = Record<string, string[]>

function flashesOf(session: Session<SessionData>): FlashStore {
  const stored = session.get(FLASH_FIELD)
  return stored !== null && typeof stored === 'object' ? (stored as FlashStore) : {}
}

/**
 * Adds a flash message: shown once, on a later request (typically after a redirect). Stored in the
 * session field `flash` in connect-flash's format, so on Express `req.flash()` reads it too.
 *
 * @example
 * ```ts
 * addFlash(session, 'error', 'Wrong password')
 * // next request:
 * const errors = takeFlash(session, 'error') // ['Wrong password'], then gone
 * ```
 */
export function addFlash<Data extends SessionData>(
  session: Session<Data>,
  type: string,
  message: string,
): void {
  const any = session as unknown as Session<SessionData>
  const flashes = flashesOf(any)
  any.set(FLASH_FIELD, { ...flashes, [type]: [...(flashes[type] ?? []), message] })
}

/** The flash messages of a type, removed from the session (the response's save removes them for good). */
export function takeFlash<Data extends SessionData>(session: Session<Data>, type: string): string[] {
  const any = session as unknown as Session<SessionData>
  const flashes = flashesOf(any)
  const taken = flashes[type] ?? []
  if (taken.length === 0) return []
  const { [type]: _removed, ...rest } = flashes
  if (Object.keys(rest).length === 0) any.delete(FLASH_FIELD)
  else any.set(FLASH_FIELD, rest)
  return taken
}
