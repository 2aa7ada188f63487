/**
 * Key layout. `{tag}` is a Redis Cluster hash tag: a user's sessions and the user's index share
 * the tag (derived from the user ID), so they sit in one slot and multi-key scripts stay legal.
 *
 *   <prefix>{<tag>}:s:<sha256(session id)>   hash: one field per data field, plus metadata
 *   <prefix>{<tag>}:u:<user id>              set of the user's session storage IDs
 *   <prefix>{<tag>}:r:<user id>              the user's revocation epoch (a counter)
 */
export function sessionKey(prefix: string, tag: string, storageId: string): string {
  return `${prefix}{${tag}}:s:${storageId}`
}

export function userIndexKey(prefix: string, tag: string, userId: string): string {
  return `${prefix}{${tag}}:u:${userId}`
}

/** A session's key without its storage ID: scripts that find sessions through the index build keys from it. */
export function sessionKeyStem(prefix: string, tag: string): string {
  return `${prefix}{${tag}}:s:`
}

/**
 * The user's revocation epoch, bumped by "log out everywhere". A session records the epoch it
 * was created under (field `~r`); writes and rotations of a session whose epoch is behind are
 * refused, so no request that started before the revocation can keep the user signed in.
 */
export function revocationKey(prefix: string, tag: string, userId: string): string {
  return `${prefix}{${tag}}:r:${userId}`
}

/** Hash fields holding metadata; data fields are `d:<name>`, so the two never collide. */
export const META = {
  createdAt: '~c',
  expiresAt: '~x',
  touchedAt: '~t',
  userId: '~u',
  userAgent: '~a',
  epoch: '~r',
  /** '0' for a browser-session cookie ("remember me" off); absent means persistent. */
  persistent: '~p',
} as const

export const DATA_PREFIX = 'd:'
