import type { Request } from 'autocannon'
import type { Mix } from '../load/mixes.js'
import { popularUser } from '../load/mixes.js'

/** What the load side sent and what the app acknowledged, to match against the shards afterwards. */
export interface WriteLedger {
  /** Posts sent; the next post's ID is `sent + 1`, so IDs are unique across every phase's mix. */
  sent: number
  /** Post ID → user, for every 201 answer that named the post it stored. */
  acknowledged: Map<number, number>
}

const parse = (body: string): { postId?: unknown; userId?: unknown } | undefined => {
  try {
    return JSON.parse(body) as { postId?: unknown; userId?: unknown }
  } catch {
    return undefined
  }
}

/**
 * Stage 11: every request is a post by a user (skewed to popular users; 1 in 10 by the celebrity)
 * with a post ID chosen here, then a read of that user's profile. The app answers 201 with the post
 * ID it stored, which goes in the ledger.
 */
export function shardWriteMix(users: number, celebrity: number, ledger: WriteLedger): Mix {
  const counts = { posts: 0, acknowledged: 0, refused: 0, reads: 0, celebrityPosts: 0 }
  const requests: Request[] = [
    {
      method: 'POST',
      path: '/posts',
      headers: { 'content-type': 'application/json' },
      setupRequest(request) {
        const postId = ++ledger.sent
        const userId = Math.random() < 0.1 ? celebrity : popularUser(users)
        counts.posts++
        if (userId === celebrity) counts.celebrityPosts++
        return { ...request, body: JSON.stringify({ userId, postId }) }
      },
      onResponse(status, body) {
        const answer = parse(body)
        if (status === 201 && typeof answer?.postId === 'number' && typeof answer.userId === 'number') {
          ledger.acknowledged.set(answer.postId, answer.userId)
          counts.acknowledged++
        } else if (status >= 500) counts.refused++
      },
    },
    {
      method: 'GET',
      path: '/users/1',
      setupRequest: (request) => ({ ...request, path: `/users/${popularUser(users)}` }),
      onResponse(status) {
        if (status === 200) counts.reads++
      },
    },
  ]
  return { name: 'sharded posts', requests, counts: () => ({ ...counts }) }
}
