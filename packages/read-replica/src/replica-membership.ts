import type { PostgresCursorConstructor } from 'kysely'
import { DatabaseNode, isNodeConfig, type NodeInput, type PoolLike } from './database-node.js'
import { ReadReplicaOptionsError } from './errors.js'
import type { Logger } from './observability.js'
import { checkNode } from './option-checks.js'
import type { ReplicaMonitor } from './replica-monitor.js'

export interface MembershipSettings {
  readonly cursor: PostgresCursorConstructor | undefined
  readonly connectTimeoutMs: number
  /** how long a removed replica's pool may take to end */
  readonly checkTimeoutMs: number
  readonly logger: Logger | undefined
}

/** Where the replica list comes from at run time (DNS, service discovery, a config service). */
export type ReplicaDiscovery = () => Promise<readonly NodeInput[]> | readonly NodeInput[]

/**
 * The replica set, changeable at run time (GitLab's load balancer refreshes its hosts from DNS
 * the same way). A replica is known by its name (`{ pool, name }`) or, without one, by its pool.
 * The router owns the pools it is given: a removed replica's pool is ended once its running
 * reads have finished.
 */
export class ReplicaMembership {
  readonly #monitor: ReplicaMonitor
  readonly #settings: MembershipSettings
  #count: number
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(monitor: ReplicaMonitor, settings: MembershipSettings) {
    this.#monitor = monitor
    this.#settings = settings
    this.#count = monitor.replicas.length
  }

  /** Adds a replica; it takes reads after its first good check. */
  async add(input: NodeInput): Promise<void> {
    const checked = checkNode(input, 'replica')
    const key = keyOf(checked)
    if (this.#find(key)) {
      throw new ReadReplicaOptionsError(
        `a replica ${typeof key === 'string' ? `named ${key}` : 'with this pool'} is already configured`,
        {
          option: 'replica',
        },
      )
    }
    this.#count++
    await this.#monitor.addReplica(
      new DatabaseNode(
        checked,
        `replica-${this.#count}`,
        this.#settings.cursor,
        this.#settings.connectTimeoutMs,
      ),
    )
  }

  /** Removes a replica (by name or pool); false when there is none. Its pool is ended. */
  async remove(nameOrPool: string | PoolLike): Promise<boolean> {
    const replica = this.#find(nameOrPool)
    if (!replica) return false
    this.#monitor.removeReplica(replica)
    await replica.node.destroy(this.#settings.checkTimeoutMs).catch(() => {})
    return true
  }

  /**
   * Makes the replica set `inputs`: adds the new ones, removes the missing ones, keeps the rest
   * (a known name keeps its existing pool; a new pool passed for it is ended).
   */
  async set(inputs: readonly NodeInput[]): Promise<void> {
    if (!Array.isArray(inputs)) {
      throw new ReadReplicaOptionsError('replicas must be an array of pg.Pool or { pool, name }', {
        option: 'replicas',
      })
    }
    const checked = inputs.map((input, index) => checkNode(input, `replicas[${index}]`))
    const wanted = new Set(checked.map(keyOf))
    for (const replica of this.#monitor.replicas) {
      if (!wanted.has(replica.name) && !wanted.has(replica.node.pool)) await this.remove(replica.node.pool)
    }
    for (const input of checked) {
      const existing = this.#find(keyOf(input))
      if (!existing) await this.add(input)
      else if (isNodeConfig(input) && input.pool !== existing.node.pool)
        await input.pool.end().catch(() => {})
    }
  }

  /** Calls `discover` every `intervalMs` and applies its list; a failing discovery keeps the set. */
  startDiscovery(discover: ReplicaDiscovery, intervalMs: number): void {
    const tick = async () => {
      try {
        await this.set(await discover())
      } catch (error) {
        this.#settings.logger?.warn(
          { error },
          '[@scale/read-replica] replica discovery failed; keeping the current replicas',
        )
      }
      if (!this.#closed) {
        this.#timer = setTimeout(() => void tick(), intervalMs)
        this.#timer.unref()
      }
    }
    void tick()
  }

  stopDiscovery(): void {
    this.#closed = true
    if (this.#timer) clearTimeout(this.#timer)
  }

  #find(key: string | PoolLike) {
    return this.#monitor.replicas.find((replica) =>
      typeof key === 'string' ? replica.name === key : replica.node.pool === key,
    )
  }
}

function keyOf(input: NodeInput): string | PoolLike {
  return isNodeConfig(input) ? (input.name ?? input.pool) : input
}
