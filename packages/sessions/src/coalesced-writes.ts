import type { Cluster, Redis } from 'ioredis'

interface CorkableStream {
  cork(): void
  uncork(): void
}

/**
 * Coalesces the commands sent in one turn of the event loop into one socket write, the way
 * node-redis batches by default. ioredis otherwise makes one `write` syscall per command, and on a
 * busy session server that was the largest single cost of a request (ioredis was about half of
 * the server's CPU on bare node:http); `enableAutoPipelining` batches too but builds a Pipeline per
 * batch and measured slower than no batching at all. The socket is corked until `setImmediate`,
 * i.e. until every callback of the current poll phase has run, so the commands of all requests
 * that arrived together leave in one write, with no delay beyond the current loop turn. Each cork
 * is paired with exactly one uncork, so the client's socket is never left corked. A Cluster is
 * left alone: it spreads commands over many sockets.
 */
export class CoalescedWrites {
  readonly #redis: Redis | Cluster
  readonly #enabled: boolean
  #corked: CorkableStream | undefined

  constructor(redis: Redis | Cluster, enabled: boolean) {
    this.#redis = redis
    this.#enabled = enabled && !redis.isCluster
  }

  /** Call right before sending a command. */
  hold(): void {
    if (!this.#enabled || this.#corked !== undefined) return
    const stream = (this.#redis as { stream?: Partial<CorkableStream> }).stream
    if (typeof stream?.cork !== 'function' || typeof stream.uncork !== 'function') return
    const corkable = stream as CorkableStream
    corkable.cork()
    this.#corked = corkable
    setImmediate(() => {
      this.#corked = undefined
      corkable.uncork()
    })
  }
}
