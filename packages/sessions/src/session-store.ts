/** Where a session lives in a store: a shard tag (a Redis Cluster hash tag) and a storage ID. */
export interface SessionLocation {
  /** Same for every session of one user (derived from the user ID), random for anonymous ones. */
  readonly tag: string
  /** The SHA-256 of the session ID: what a store keeps instead of the ID itself. */
  readonly storageId: string
}

/** One entry of a user's session list. */
export interface UserSessionInfo {
  /** Opaque, non-secret handle of the session (the hash of its ID): pass it to `destroyUserSession`. */
  readonly handle: string
  readonly createdAt: Date
  /** Last time the session was used, accurate to `touchAfterMs`. */
  readonly lastSeenAt: Date
  readonly expiresAt: Date
  readonly userAgent: string | undefined
}

/** A session to store for the first time. */
export interface NewSessionRecord {
  readonly location: SessionLocation
  readonly userId: string | undefined
  /** Idle expiry of the new record. */
  readonly ttlMs: number
  /** Time left until the absolute timeout: the longest the user's bookkeeping must last. */
  readonly lifetimeMs: number
  /** Flat field/value list (metadata and data fields) to store. */
  readonly fields: readonly string[]
  /**
   * A rotation of a logged-in session (same user): the session this one replaces. The store
   * creates the new record only if this one still exists and the user's sessions were not
   * revoked since it was created, and deletes it in the same atomic step.
   */
  readonly replaces?: SessionLocation
  /**
   * For a user's session: keep at most this many of the user's sessions, ending the least
   * recently used ones (never this one) in the same atomic step. Undefined: no cap.
   */
  readonly maxSessionsPerUser?: number
}

/** What {@link SessionStore.create} did. */
export type CreateOutcome =
  /** Stored. */
  | 'created'
  /** A record with this ID exists already (a 256-bit collision: not expected, never merged). */
  | 'collision'
  /** `replaces` no longer exists or the user's sessions were revoked since it was created: nothing stored. */
  | 'revoked'

/**
 * Where sessions live. The engine (`createSessions`) owns cookies, IDs, timeouts and the
 * request lifecycle; a store owns persistence and the atomic steps that keep a revoked session
 * dead. `@scale/sessions/testing` exports the conformance suite every store must pass.
 *
 * The contract a store must keep (the suite checks each):
 * - `update` applies only to a record that still exists and whose user was not revoked since it
 *   was created; it changes the named fields only (others' concurrent changes survive).
 * - `destroyUser(userId)` (all) is one atomic step that also makes every record created before it
 *   for that user unusable, including a rotation (`create` with `replaces`) already in flight.
 */
export interface SessionStore {
  /**
   * The tag every session of this user is stored under: 6 base64url characters (it travels in
   * the cookie), the same for every call. The Redis store derives it from the user ID so a
   * user's sessions share a Redis Cluster slot; `tagForUser` from `@scale/sessions/testing`
   * fits any store.
   */
  userTag(userId: string): string
  /** All fields of a session, or an empty object when it does not exist. */
  read(at: SessionLocation): Promise<Record<string, string>>
  create(record: NewSessionRecord): Promise<CreateOutcome>
  /**
   * Sets and deletes the given fields; extends the idle expiry to `ttlMs` unless it is 0.
   * @returns false when the session no longer exists or was revoked (nothing written)
   */
  update(
    at: SessionLocation,
    userId: string | undefined,
    ttlMs: number,
    setPairs: readonly string[],
    deleted: readonly string[],
  ): Promise<boolean>
  /** @returns whether the session existed */
  destroy(at: SessionLocation, userId: string | undefined): Promise<boolean>
  listUser(userId: string): Promise<UserSessionInfo[]>
  /**
   * Ends sessions of a user: the given handles only, or all of them (but `except`) when `only` is
   * undefined. "All" also revokes: records created before it can no longer be updated or rotated.
   * @returns how many live sessions were ended
   */
  destroyUser(
    userId: string,
    only: readonly string[] | undefined,
    except: string | undefined,
  ): Promise<number>
}
