import { Cluster, Redis } from 'ioredis'

/** How a test (or a child process) reaches the Redis under test: one server or a cluster. */
export type RedisTarget =
  | { kind: 'single'; port: number }
  | { kind: 'cluster'; nodes: { host: string; port: number }[] }

/** A client like a user would configure it (defaults of ioredis, errors logged nowhere). */
export function connect(target: RedisTarget): Redis | Cluster {
  const client =
    target.kind === 'single'
      ? new Redis({ host: '127.0.0.1', port: target.port })
      : new Cluster(target.nodes, { clusterRetryStrategy: () => 200 })
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
