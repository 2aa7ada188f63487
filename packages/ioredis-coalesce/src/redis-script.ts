import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'

/**
 * A Lua script run by EVALSHA, falling back to EVAL when the server has not cached it (first use
 * on a node, after SCRIPT FLUSH or a restart). EVALSHA alone sends only the 40-byte digest per
 * call; the body goes over the wire once per node instead of on every call.
 *
 * @example
 * ```ts
 * const bump = new RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
 * await bump.run(redis, ['counter'], [2])
 * ```
 */
export class RedisScript {
  readonly source: string
  /** The SHA-1 digest of `source`, as EVALSHA names the script. */
  readonly sha: string

  constructor(source: string) {
    this.source = source
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  /**
   * Runs the script on `client` (a single `Redis`, a `Cluster` or one Cluster node). Rejects with
   * the client's own error; a `NOSCRIPT` reply is answered by one EVAL of the body, never more.
   */
  run(
    client: Redis | Cluster,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    return client.evalsha(this.sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (!isNoScript(error)) throw error
      return client.eval(this.source, keys.length, ...keys, ...args)
    })
  }
}

/** `true` for the server's "this script is not cached" reply. */
export function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}
