import type { StandardSchemaV1 } from '@standard-schema/spec'
import type { SessionLocation } from './session-store.js'

// What a session is made of, apart from the `Session` class that works on it: its data type,
// the options of a rotation, what the engine does for it, and its mutable per-request state.

/** Data of a session: field name → JSON-serializable value. */
export type SessionData = Record<string, unknown>

/** Options of {@link Session.regenerate}. */
export interface RegenerateOptions {
  /**
   * The user the new session belongs to (a login). Omit to keep the current user (a periodic ID
   * rotation); a changed user starts a new absolute-timeout window.
   * Pass `undefined` explicitly for an anonymous session (e.g. a logout that keeps the cart).
   * @default the session's current user
   */
  userId?: string | undefined
  /** Carry the data fields over to the new session (e.g. a shopping cart across login). @default false */
  keepData?: boolean
  /**
   * "Remember me": `true` sends a cookie with `Max-Age` (it survives a browser restart), `false`
   * a browser-session cookie (no `Max-Age`: the browser drops it when it closes). The server-side
   * idle and absolute timeouts apply either way.
   * @default the session's current setting (`true` for a new session)
   */
  persistent?: boolean
}

/** What the session engine does for a session; implemented by `createSessions`. */
export interface SessionEngine {
  readonly fields: Readonly<Record<string, StandardSchemaV1>> | undefined
  destroyStored(location: SessionLocation, userId: string | undefined): Promise<void>
  freshIdentity(userId: string | undefined): { sessionId: string; location: SessionLocation }
  absoluteTimeoutMs: number
  reportError(error: Error): void
}

/** @internal the mutable state behind a {@link Session}; only the engine reads it. */
export interface SessionState {
  sessionId: string
  location: SessionLocation
  /** Not in Redis yet: created on commit if it has a user or data. */
  isNew: boolean
  userId: string | undefined
  userAgent: string | undefined
  /** Its cookie carries Max-Age (false: a browser-session cookie). */
  persistent: boolean
  createdAt: number
  expiresAt: number
  touchedAt: number
  /** Raw JSON per data field, as loaded. */
  readonly stored: Map<string, string>
  /** Raw JSON per changed field; `null` marks a deletion. */
  readonly changes: Map<string, string | null>
  /** The cookie verified with an older secret: send it re-signed with the newest. */
  needsResign: boolean
  /** Stored by this request's commit: send its cookie. */
  sendCookie: boolean
  /** The client sent a cookie that no longer names a live session: clear it unless replaced. */
  clearCookie: boolean
  /** Redis was down and the policy is 'anonymous': nothing is saved. */
  readOnly: boolean
  committed: boolean
  /** Its rotation was refused or its write found it gone: nothing more is written for it. */
  ended: boolean
  /** Parsed values by field, so repeated reads do not re-parse. */
  readonly parsed: Map<string, unknown>
  /**
   * The stored session a `regenerate` replaces. It stays in the store until the new one is
   * saved, and the two change places in one atomic step then, so a revocation that lands while
   * the request runs is never undone by it.
   */
  predecessor: { location: SessionLocation; userId: string | undefined } | undefined
  /**
   * Set when the response's headers left before the session was saved: the session ID whose
   * cookie they carried (undefined: they carried none for a new session). A new session with
   * another ID can no longer reach the client, so it is not stored.
   */
  headersSentFor: { sessionId: string; issued: boolean } | undefined
}
