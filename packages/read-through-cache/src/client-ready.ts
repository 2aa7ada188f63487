import type { RedisClient } from './redis-tier.js'

/** For each shared client: the one `'ready'` listener it holds, and the callbacks it calls. */
const sharedByClient = new WeakMap<RedisClient, { listener: () => void; callbacks: Set<() => void> }>()

/**
 * Calls `callback` on each `'ready'` of `client` until the returned function is called. However
 * many caches share a client (one per namespace is common) it holds a single listener of ours, so
 * eleven caches calling `ready()` do not trip Node's MaxListenersExceededWarning on the user's client.
 */
export function onClientReady(client: RedisClient, callback: () => void): () => void {
  let shared = sharedByClient.get(client)
  if (shared === undefined) {
    const callbacks = new Set<() => void>()
    // A copy: a callback may remove itself (a settled `ready()`) while the others are called.
    const listener = () => {
      for (const each of [...callbacks]) each()
    }
    shared = { listener, callbacks }
    sharedByClient.set(client, shared)
    client.on('ready', listener)
  }
  const { listener, callbacks } = shared
  const own = () => callback()
  callbacks.add(own)
  return () => {
    if (!callbacks.delete(own) || callbacks.size > 0) return
    sharedByClient.delete(client)
    client.off('ready', listener)
  }
}
