import { Cluster, Redis } from 'ioredis'
import { Cluster as Cluster6, Redis as Redis6 } from 'ioredis6'

/**
 * How a test (or a child process) reaches the Redis under test: one server or a cluster, through
 * ioredis 5 (the default) or ioredis 6 (`ioredis: 6`, the other supported peer major).
 */
export type RedisTarget =
  | { kind: 'single'; port: number; ioredis?: 5 | 6 }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; ioredis?: 5 | 6 }

/** A client like a user would configure it (defaults of ioredis, errors logged nowhere). */
export function connect(target: RedisTarget): Redis | Cluster {
  // The cache only uses what both majors share; typed as 5 for the test code.
  const [RedisClass, ClusterClass] = (target.ioredis === 6 ? [Redis6, Cluster6] : [Redis, Cluster]) as [
    typeof Redis,
    typeof Cluster,
  ]
  const client =
    target.kind === 'single'
      ? new RedisClass({ host: '127.0.0.1', port: target.port })
      : new ClusterClass(target.nodes, { clusterRetryStrategy: () => 200 })
  // ioredis emits 'error' on every failed reconnect; the outage tests expect those.
  client.on('error', () => {})
  return client
}

export async function disconnect(client: Redis | Cluster): Promise<void> {
  try {
    await client.quit()
  } catch {
    client.disconnect()
  }
}
