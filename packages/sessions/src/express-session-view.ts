import type { IncomingMessage } from 'node:http'
import { regenerateNow, type Session, type SessionData, stateOf } from './session.js'
import type { Sessions } from './sessions.js'

type Callback = (error?: unknown) => void

/**
 * How the logged-in user is read from `req.session` data, for the per-user index
 * (`listUserSessions`, `destroyAllUserSessions`). `'passport'`: `req.session.passport.user` when
 * it is a string or number (what passport's `serializeUser` usually stores), and no change when
 * the session has no `passport` field (so `regenerate({ userId })` through the core API keeps
 * working alongside). A function: its result, always. `false`: never.
 */
export type UserIdFrom = 'passport' | ((data: Record<string, unknown>) => string | undefined) | false

/** `req.session.cookie`: the cookie's settings, read-only (express-session's shape). */
export interface ExpressSessionCookie {
  readonly maxAge: number
  readonly originalMaxAge: number
  readonly expires: Date
  readonly path: string
  readonly httpOnly: boolean
  readonly secure: boolean
  readonly sameSite: string
}

/**
 * `req.session` with express-session's shape, over a session of this package: data fields are
 * the object's own properties (assign, mutate nested objects, `delete`), and the methods take
 * Node-style callbacks. Passport 0.7 (`req.session.regenerate`/`save` on login and logout),
 * connect-flash and similar middleware use it unchanged. Changes are found the way
 * express-session finds them, by comparing each field's JSON with what was loaded, when the
 * session is saved.
 */
export class ExpressSessionView {
  readonly #sessions: Sessions<SessionData>
  readonly #session: Session<SessionData>
  readonly #req: IncomingMessage & { session?: unknown }
  readonly #userIdFrom: UserIdFrom
  /** Each field's JSON when this view was made: what `sync` compares against. */
  readonly #loaded = new Map<string, string>()

  /** @internal created by the Express adapter. */
  constructor(
    sessions: Sessions<SessionData>,
    session: Session<SessionData>,
    req: IncomingMessage,
    userIdFrom: UserIdFrom,
  ) {
    this.#sessions = sessions
    this.#session = session
    this.#req = req
    this.#userIdFrom = userIdFrom
    const state = stateOf(session)
    for (const [key, raw] of state.stored) this.#loaded.set(key, raw)
    for (const [key, raw] of state.changes) {
      if (raw === null) this.#loaded.delete(key)
      else this.#loaded.set(key, raw)
    }
    Object.assign(this, session.toJSON())
  }

  /** The session's non-secret handle (the hash of its ID; the ID itself stays in the cookie). */
  get id(): string {
    return this.#session.handle
  }

  get cookie(): ExpressSessionCookie {
    const cookie = this.#sessions.cookieAttributes
    const maxAge = Math.max(0, this.#session.expiresAt.getTime() - Date.now())
    return { ...cookie, maxAge, originalMaxAge: maxAge, expires: this.#session.expiresAt }
  }

  /** A new, empty session under a new ID (the old one ends when this request's session is saved). */
  regenerate(callback: Callback): this {
    this.#run(callback, () => {
      this.sync()
      regenerateNow(this.#session, { userId: undefined })
      this.#replace()
    })
    return this
  }

  /** Ends the session now; `req.session` is gone for the rest of the request (as with express-session). */
  destroy(callback: Callback): this {
    this.#run(callback, async () => {
      await this.#session.destroy()
      if (this.#req.session === this) this.#req.session = undefined
    })
    return this
  }

  /** Writes the session now instead of when the response ends. */
  save(callback?: Callback): this {
    this.#run(callback, async () => {
      this.sync()
      await this.#sessions.save(this.#session)
    })
    return this
  }

  /** Re-reads the session from the store, dropping unsaved changes. */
  reload(callback: Callback): this {
    this.#run(callback, async () => {
      await this.#sessions.reload(this.#session)
      this.#replace()
    })
    return this
  }

  /** The idle expiry is extended by every request already: nothing to do. */
  touch(): this {
    return this
  }

  /** The absolute timeout decides the cookie's life: nothing to reset. */
  resetMaxAge(): this {
    return this
  }

  /**
   * @internal Copies this object's fields into the session (changed ones only), and follows a
   * change of the logged-in user (passport's login/logout) with a new session ID.
   */
  sync(): void {
    const session = this.#session
    const loaded = this.#loaded
    const own = Object.entries(this)
    // Only what changed through this object goes to the session, so changes made through
    // `sessions.of(req)` in the same request are not overwritten with the values loaded here.
    for (const [key, value] of own) {
      if (value === undefined) {
        if (loaded.has(key)) session.delete(key)
        continue
      }
      const raw = JSON.stringify(value)
      if (raw !== loaded.get(key)) {
        session.set(key, value)
        loaded.set(key, raw)
      }
    }
    if (own.length < loaded.size) {
      const present = new Set(own.map(([key]) => key))
      for (const key of [...loaded.keys()]) {
        if (!present.has(key)) {
          session.delete(key)
          loaded.delete(key)
        }
      }
    }
    const userId = this.#currentUserId()
    if (userId !== null && userId !== session.userId) regenerateNow(session, { userId, keepData: true })
  }

  /** The user the data names; null: leave the session's user as it is. */
  #currentUserId(): string | undefined | null {
    const from = this.#userIdFrom
    if (from === false) return null
    const data = this as unknown as Record<string, unknown>
    if (typeof from === 'function') return from(data)
    if (!Object.hasOwn(data, 'passport')) return null
    const user = (data.passport as { user?: unknown } | null | undefined)?.user
    return typeof user === 'string' || typeof user === 'number' ? String(user) : undefined
  }

  /** A fresh view on the (changed) session becomes `req.session`, as express-session does. */
  #replace(): void {
    this.#req.session = new ExpressSessionView(this.#sessions, this.#session, this.#req, this.#userIdFrom)
  }

  #run(callback: Callback | undefined, action: () => void | Promise<void>): void {
    let result: void | Promise<void>
    try {
      result = action()
    } catch (error) {
      queueMicrotask(() => callback?.(error))
      return
    }
    Promise.resolve(result).then(
      () => callback?.(),
      // Without a callback the error is not lost: the same failure surfaces again when the
      // response ends and the session is saved.
      (error: unknown) => callback?.(error),
    )
  }
}
