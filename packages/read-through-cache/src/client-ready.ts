import type { RedisClient } from './redis-tier.js'

/** The callbacks of every cache (and every waiting `ready()`) sharing one client, by client. */
const callbacksByClient = new WeakMap<RedisClient, Set<() => void>>()
/** The one `'ready'` listener each shared client holds, removed with its last callback. */
const listenerByClient = new WeakMap<RedisClient, () => void>()

/**
 * Calls `callback` on each `'ready'` of `client` until the returned function is called. However
 * many caches share a client (one per namespace is common) it holds a single listener of ours, so
 * eleven caches calling `ready()` do not trip Node's MaxListenersExceededWarning on the user's client.
 */
export function onClientReady(client: RedisClient, callback: () => void): () => void {
  let callbacks = callbacksByClient.get(client)
  if (callbacks === undefined) {
    const shared = new Set<() => void>()
    callbacks = shared
    callbacksByClient.set(client, shared)
    // A copy: a callback may remove itself (a settled `ready()`) while the others are called.
    const listener = () => {
      for (const each of [...shared]) each()
    }
    listenerByClient.set(client, listener)
    client.on('ready', listener)
  }
  const own = () => callback()
  callbacks.add(own)
  return () => {
    if (!callbacks.delete(own) || callbacks.size > 0) return
    callbacksByClient.delete(client)
    const listener = listenerByClient.get(client)
    listenerByClient.delete(client)
    if (listener !== undefined) client.off('ready', listener)
  }
}
