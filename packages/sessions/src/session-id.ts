import { createHash, randomBytes } from 'node:crypto'

/** 32 bytes = 256 bits from the CSPRNG (OWASP asks for ≥ 64 bits of entropy; we leave no doubt). */
const ID_BYTES = 32

/** A fresh session ID: 256 random bits, base64url (43 characters). */
export function newSessionId(): string {
  return randomBytes(ID_BYTES).toString('base64url')
}

/**
 * What Redis stores instead of the ID. SHA-256 is one-way, so a Redis dump, a replica, a
 * MONITOR log or a slow-log entry yields only hashes, and a hash in a cookie signs in nobody.
 * A plain hash (no salt, no stretching) is enough: the input is 256 random bits, not a password.
 */
export function storageIdOf(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('base64url')
}

/**
 * The Redis Cluster hash tag of a session. A logged-in session's tag is derived from the user ID,
 * so every session of a user and the user's index live in one slot and "log out everywhere" is a
 * single atomic script; an anonymous session gets a random tag, spreading anonymous traffic.
 * 6 base64url characters (36 bits) spread keys over all 16384 slots.
 */
export function tagForUser(keyPrefix: string, userId: string): string {
  return createHash('sha256').update(`${keyPrefix}\0${userId}`).digest('base64url').slice(0, 6)
}

export function randomTag(): string {
  return randomBytes(6).toString('base64url').slice(0, 6)
}
