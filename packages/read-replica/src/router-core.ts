import { AsyncLocalStorage } from 'node:async_hooks'
import { type Balancer, createBalancer } from './balancer.js'
import { QueryClassifier } from './classify-query.js'
import { ConsistencyContext } from './consistency-context.js'
import { ConsistencyTokenCodec } from './consistency-token.js'
import { DatabaseNode } from './database-node.js'
import { ReadReplicaClosedError } from './errors.js'
import { FunctionCatalog, mayChangeFunctions } from './function-catalog.js'
import { MetricsSink } from './observability.js'
import type { ResolvedOptions } from './options.js'
import { PinnedSessions } from './pinned-sessions.js'
import { PrimaryExecutor } from './primary-executor.js'
import { ReadTargetPicker } from './read-target.js'
import { ReplicaMembership } from './replica-membership.js'
import { ReplicaMonitor } from './replica-monitor.js'
import { ReplicaReads } from './replica-reads.js'
import { RouteRecorder } from './route-recorder.js'
import { countRouterEvents, logRouterEvents, RouterEventEmitter } from './router-events.js'
import { RouterMetrics } from './router-metrics.js'

/** What `usePrimary()` / `preventWrites()` set for the code they run. */
export type RoutingScope = 'primary' | 'prevent-writes'

/**
 * The parts of one replicated instance, wired together once: nodes, monitor, membership,
 * function catalog, executors, events and counters, plus the open/closed state. The public
 * router (`RouterFacade`) and the Kysely side (`QueryRouter`) are two views of it.
 */
export class RouterCore {
  readonly options: ResolvedOptions
  readonly primaries: readonly DatabaseNode[]
  readonly membership: ReplicaMembership
  readonly monitor: ReplicaMonitor
  readonly events = new RouterEventEmitter()
  readonly counters: RouterMetrics
  readonly context: ConsistencyContext
  readonly codec: ConsistencyTokenCodec
  readonly primary: PrimaryExecutor
  readonly reads: ReplicaReads
  readonly pinned: PinnedSessions
  readonly catalog: FunctionCatalog
  readonly classifier: QueryClassifier
  readonly scope = new AsyncLocalStorage<RoutingScope>()
  #closing: Promise<void> | undefined

  constructor(options: ResolvedOptions) {
    this.options = options
    this.counters = new RouterMetrics(new MetricsSink(options.metrics, options.logger))
    if (options.metrics) countRouterEvents(this.events, this.counters.sink)
    this.primaries = options.primaries.map(
      (input, index) =>
        new DatabaseNode(
          input,
          index === 0 ? 'primary' : `primary-${index + 1}`,
          options.cursor,
          options.connectTimeoutMs,
        ),
    )
    const replicaNodes = options.replicas.map(
      (input, index) =>
        new DatabaseNode(input, `replica-${index + 1}`, options.cursor, options.connectTimeoutMs),
    )
    const balancer: Balancer = createBalancer(options.balance)
    this.monitor = new ReplicaMonitor(
      this.primaries,
      replicaNodes,
      {
        intervalMs: options.monitorIntervalMs,
        checkTimeoutMs: options.checkTimeoutMs,
        maxLagSeconds: options.maxLagSeconds,
        maxLagBytes: options.maxLagBytes,
        excludeAfterChecks: options.excludeAfterChecks,
        rejoinAfterChecks: options.rejoinAfterChecks,
        rywPollIntervalMs: options.rywPollIntervalMs,
      },
      this.events,
      balancer,
    )
    this.membership = new ReplicaMembership(this.monitor, options)
    if (options.discoverReplicas) {
      this.membership.startDiscovery(options.discoverReplicas, options.discoverIntervalMs)
    }
    this.catalog = new FunctionCatalog(options, {
      nodes: async () => [
        await this.monitor.currentPrimary(),
        ...this.monitor.healthyReplicas().map((replica) => replica.node),
      ],
      timeoutMs: options.checkTimeoutMs,
      retryMs: options.monitorIntervalMs,
    })
    this.classifier = new QueryClassifier(this.catalog)
    this.context = new ConsistencyContext(options.outsideContext === 'process')
    if (options.logger) logRouterEvents(this.events, options.logger)
    this.codec = new ConsistencyTokenCodec(options.tokenSecret)
    const recorder = new RouteRecorder(this.counters, this.events)
    this.primary = new PrimaryExecutor(this.monitor, this.context, recorder, {
      queryTimeoutMs: options.queryTimeoutMs,
      afterStatement: (sql) => {
        if (mayChangeFunctions(sql)) this.catalog.changed()
      },
    })
    const targets = new ReadTargetPicker(this.monitor, balancer, this.counters, {
      whenNoReplica: options.whenNoReplica,
      rywWaitMs: options.rywWaitMs,
    })
    this.reads = new ReplicaReads(this.monitor, targets, this.primary, this.context, recorder, options)
    this.pinned = new PinnedSessions(
      this.primary,
      this.classifier,
      this.catalog,
      this.context,
      recorder,
      options.readYourWrites,
    )
  }

  get closed(): boolean {
    return this.#closing !== undefined
  }

  /** Throws the closed error naming `method` once `close()` was called. */
  assertOpen(method: string): void {
    if (this.#closing) throw new ReadReplicaClosedError(method)
  }

  /**
   * Every query: the monitor runs and the catalog is loaded (until then, function calls go to
   * the primary, or wait for a load in flight).
   */
  ensureStarted(): void {
    this.monitor.ensureStarted()
    this.catalog.ensureLoading()
  }

  /** Stops the monitor and ends every pool (each pool once, even when listed twice); idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown()
    return this.#closing
  }

  async #shutDown(): Promise<void> {
    this.membership.stopDiscovery()
    await this.monitor.close()
    const seen = new Set<unknown>()
    await Promise.all(
      [...this.primaries, ...this.monitor.replicas.map((replica) => replica.node)].map(async (node) => {
        if (seen.has(node.pool)) return
        seen.add(node.pool)
        await node.destroy(this.options.checkTimeoutMs).catch(() => {})
      }),
    )
  }
}
