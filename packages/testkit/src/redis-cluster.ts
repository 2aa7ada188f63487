import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { redisBinary } from './binaries.js'
import { TestkitError } from './errors.js'
import { freePort } from './free-port.js'
import { RedisServer } from './redis.js'
import { runCommand } from './run-command.js'
import { startWithOneRetry } from './start-retry.js'
import { makeTempDir, removeTempDir } from './temp-dir.js'
import { waitFor } from './wait.js'

export interface StartRedisClusterOptions {
  /** @default 3 */
  masters?: number
  /** @default 1 */
  replicasPerMaster?: number
  /**
   * `cluster-node-timeout`: how long a master may be unreachable before its replica takes over.
   * @default 1000
   */
  nodeTimeoutMs?: number
}

interface ClusterNodeLine {
  port: number
  role: 'master' | 'slave'
  failed: boolean
  slots: number
}

function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [, address = '', flags = '', , , , , , ...slots] = line.split(' ')
      return {
        port: Number(address.split('@')[0]?.split(':')[1]),
        role: flags.includes('master') ? 'master' : 'slave',
        // 'fail' is agreed by the majority; 'fail?' (pfail) is one node's suspicion only.
        failed: flags.split(',').includes('fail'),
        slots: slots.length,
      }
    })
}

/** A Redis Cluster of real `redis-server` processes (3 masters with 1 replica each by default). */
export class RedisCluster {
  readonly nodes: readonly RedisServer[]
  readonly #dir: string

  constructor(dir: string, nodes: RedisServer[]) {
    this.#dir = dir
    this.nodes = nodes
  }

  /** Seed nodes for `new Cluster(cluster.startupNodes)` from ioredis. */
  get startupNodes(): { host: string; port: number }[] {
    return this.nodes.map((node) => ({ host: node.host, port: node.port }))
  }

  async #topology(): Promise<ClusterNodeLine[]> {
    for (const node of this.nodes.filter((n) => n.running)) {
      try {
        return parseClusterNodes(String(await node.command('cluster', 'nodes')))
      } catch {}
    }
    throw new TestkitError('E_TESTKIT_CLUSTER_DOWN', 'no running cluster node answers CLUSTER NODES')
  }

  /** The running nodes that currently serve slots as masters. */
  async masters(): Promise<RedisServer[]> {
    const lines = await this.#topology()
    const ports = new Set(
      lines.filter((l) => l.role === 'master' && l.slots > 0 && !l.failed).map((l) => l.port),
    )
    return this.nodes.filter((node) => node.running && ports.has(node.port))
  }

  /** The master that serves `key`'s hash slot. */
  async masterFor(key: string): Promise<RedisServer> {
    const [any] = this.nodes.filter((n) => n.running)
    if (!any) throw new TestkitError('E_TESTKIT_CLUSTER_DOWN', 'no cluster node is running')
    const slot = Number(await any.command('cluster', 'keyslot', key))
    const ranges = (await any.command('cluster', 'slots')) as [number, number, [string, number, string]][]
    const range = ranges.find(([start, end]) => slot >= start && slot <= end)
    const node = this.nodes.find((n) => n.port === range?.[2][1])
    if (!node) throw new TestkitError('E_TESTKIT_CLUSTER_DOWN', `no master serves slot ${slot}`)
    return node
  }

  /**
   * Waits until every running node reports `cluster_state:ok` with all slots covered by masters
   * that are running: after start, and after a failover.
   */
  async waitForHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      'the Redis Cluster to be healthy',
      async () => {
        for (const node of this.nodes.filter((n) => n.running)) {
          const info = String(await node.command('cluster', 'info'))
          if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) return false
        }
        // Every master that serves slots must be one of our running servers.
        const running = new Set(this.nodes.filter((n) => n.running).map((n) => n.port))
        const slotMasters = (await this.#topology()).filter((l) => l.role === 'master' && l.slots > 0)
        return slotMasters.every((l) => !l.failed && running.has(l.port))
      },
      { timeoutMs, intervalMs: 100 },
    )
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()))
    await removeTempDir(this.#dir)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

/**
 * Starts a Redis Cluster on free loopback ports (each node also needs port + 10000 for the bus).
 *
 * @example
 * ```ts
 * const cluster = await startRedisCluster()
 * const client = new Cluster(cluster.startupNodes)
 * const master = await cluster.masterFor('user:1')
 * await master.kill()
 * await cluster.waitForHealthy() // a replica has taken over
 * ```
 */
export function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  return startWithOneRetry(() => startRedisClusterOnce(options))
}

async function startRedisClusterOnce(options: StartRedisClusterOptions): Promise<RedisCluster> {
  const masters = options.masters ?? 3
  const replicasPerMaster = options.replicasPerMaster ?? 1
  const dir = await makeTempDir('redis-cluster')
  const nodes: RedisServer[] = []
  try {
    for (let index = 0; index < masters * (1 + replicasPerMaster); index++) {
      const nodeDir = join(dir, `node-${index}`)
      await mkdir(nodeDir)
      const port = await freePort([10_000])
      const args = [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        String(options.nodeTimeoutMs ?? 1_000),
        // A replica may take over however long it was disconnected: tests kill masters at will.
        '--cluster-replica-validity-factor',
        '0',
      ]
      nodes.push(new RedisServer(port, nodeDir, args, false))
    }
    await Promise.all(nodes.map((node) => node.start()))
    await runCommand(redisBinary('redis-cli'), [
      '--cluster',
      'create',
      ...nodes.map((node) => `${node.host}:${node.port}`),
      '--cluster-replicas',
      String(replicasPerMaster),
      '--cluster-yes',
    ])
    const cluster = new RedisCluster(dir, nodes)
    await cluster.waitForHealthy()
    return cluster
  } catch (error) {
    await Promise.all(nodes.map((node) => node.kill()))
    await removeTempDir(dir)
    throw error
  }
}
