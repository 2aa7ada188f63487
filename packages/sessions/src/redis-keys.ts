/**
 * Key layout. `{tag}` is a Redis Cluster hash tag: a user's sessions and the user's index share
 * the tag (derived from the user ID), so they sit in one slot and multi-key scripts stay legal.
 *
 *   <prefix>{<tag>}:s:<sha256(session id)>   hash: one field per data field, plus metadata
 *   <prefix>{<tag>}:u:<user id>              set of the user's session storage IDs
 */
export function sessionKey(prefix: string, tag: string, storageId: string): string {
  return `${prefix}{${tag}}:s:${storageId}`
}

export function userIndexKey(prefix: string, tag: string, userId: string): string {
  return `${prefix}{${tag}}:u:${userId}`
}

/** Hash fields holding metadata; data fields are `d:<name>`, so the two never collide. */
export const META = {
  createdAt: '~c',
  expiresAt: '~x',
  touchedAt: '~t',
  userId: '~u',
  userAgent: '~a',
} as const

export const DATA_PREFIX = 'd:'
