import type { NodeInput, PoolLike } from './database-node.js'
import { PrimaryUnreachableError } from './errors.js'
import { formatLsn, type Lsn } from './lsn.js'
import type { ReplicaRouter, RouterSnapshot } from './replica-router.js'
import type { RouterCore } from './router-core.js'
import type { RouterEvents } from './router-events.js'

/** The implementation of `db.router` (see {@link ReplicaRouter} for what each method does). */
export class RouterFacade implements ReplicaRouter {
  readonly #core: RouterCore

  constructor(core: RouterCore) {
    this.#core = core
  }

  async ready(): Promise<void> {
    const core = this.#core
    // A catalog that cannot be loaded yet (primary down) does not fail ready(): until it loads
    // (retried on later queries), selects calling functions go to the primary.
    await Promise.all([core.monitor.start(), core.closed ? undefined : core.catalog.load().catch(() => {})])
  }

  async reloadFunctions(): Promise<void> {
    const core = this.#core
    core.assertOpen('reloadFunctions')
    core.catalog.changed()
    try {
      await core.catalog.load()
    } catch (error) {
      throw new PrimaryUnreachableError({ node: core.monitor.primary.name }, error)
    }
  }

  run<T>(token: string | undefined | null, fn: () => T): T {
    let tokenLsn: Lsn | undefined
    let invalid = false
    if (token !== undefined && token !== null && token !== '') {
      try {
        tokenLsn = this.#core.codec.decode(token)
      } catch {
        invalid = true
      }
    }
    return this.#core.context.run({ lsn: undefined, tokenLsn, invalid }, fn)
  }

  token(): string | undefined {
    const requirement = this.#core.context.requirement()
    return requirement.kind === 'lsn' ? this.#core.codec.encode(requirement.lsn) : undefined
  }

  parseToken(token: string): string {
    return formatLsn(this.#core.codec.decode(token))
  }

  on<K extends keyof RouterEvents>(event: K, listener: (payload: RouterEvents[K]) => void): () => void {
    return this.#core.events.on(event, listener)
  }

  metrics(): RouterSnapshot {
    const monitor = this.#core.monitor
    return {
      ...this.#core.counters.snapshot(),
      primary: monitor.primary.name,
      primaryLsn: monitor.primaryLsn === undefined ? undefined : formatLsn(monitor.primaryLsn),
      replicas: monitor.replicas.map((replica) => ({
        name: replica.name,
        status: replica.status,
        excludedFor: replica.excludedFor,
        replayLsn: replica.replayLsn === undefined ? undefined : formatLsn(replica.replayLsn),
        lagBytes: replica.lagBytes,
        lagSeconds: replica.lagSeconds,
        latencyMs: replica.latencyMs,
        errors: replica.errors,
        outstanding: replica.outstanding,
      })),
    }
  }

  usePrimary<T>(fn: () => T): T {
    return this.#core.scope.run('primary', fn)
  }

  preventWrites<T>(fn: () => T): T {
    return this.#core.scope.run('prevent-writes', fn)
  }

  async addReplica(input: NodeInput): Promise<void> {
    this.#core.assertOpen('addReplica')
    return this.#core.membership.add(input)
  }

  async removeReplica(nameOrPool: string | PoolLike): Promise<boolean> {
    this.#core.assertOpen('removeReplica')
    return this.#core.membership.remove(nameOrPool)
  }

  async setReplicas(inputs: readonly NodeInput[]): Promise<void> {
    this.#core.assertOpen('setReplicas')
    return this.#core.membership.set(inputs)
  }

  close(): Promise<void> {
    return this.#core.close()
  }
}
