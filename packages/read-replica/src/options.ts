import type { PostgresCursorConstructor } from 'kysely'
import type { Balancer, BalanceStrategy } from './balancer.js'
import type { NodeInput } from './database-node.js'
import { ReadReplicaOptionsError } from './errors.js'
import type { Logger, MetricsHook } from './observability.js'
import {
  checkBoolean,
  checkFunctionOption,
  checkLogger,
  checkMetricsHook,
  checkNames,
  checkNumber,
  checkOneOf,
  checkPrimaries,
  checkReplicas,
  checkSecret,
} from './option-checks.js'
import type { ReplicaDiscovery } from './replica-membership.js'

/** Options of {@link createReplicatedKysely}. */
export interface ReplicatedKyselyOptions {
  /**
   * The primary: a `pg.Pool` (or `{ pool, name }`). Give several hosts (e.g. the primary and the
   * replicas that may be promoted) and the router writes to whichever is out of recovery,
   * switching after a failover; a host that is in recovery is never written to.
   */
  primary: NodeInput | readonly NodeInput[]
  /**
   * The streaming replicas, each a `pg.Pool` or `{ pool, name, weight }`. May be empty: every
   * query then goes to the primary.
   * @default []
   */
  replicas?: readonly NodeInput[]
  /**
   * Where the replica list comes from at run time (DNS, service discovery): called right away
   * and every `discoverIntervalMs`; replicas are matched by name (or pool), new ones are added
   * after a good health check, missing ones removed and their pools ended. A failing call keeps
   * the current set. `db.router.addReplica()`, `removeReplica()` and `setReplicas()` do the same by hand.
   * @default undefined
   */
  discoverReplicas?: ReplicaDiscovery
  /**
   * How often `discoverReplicas` is called.
   * @default 30000
   */
  discoverIntervalMs?: number
  /**
   * How reads are spread over the healthy replicas: `'round-robin'`, `'random'`, `'weighted'`
   * (by each replica's `weight`), `'least-outstanding'`, `'p2c'` (power of two choices), or your
   * own {@link Balancer}.
   * @default 'least-outstanding'
   */
  balance?: BalanceStrategy | Balancer
  /**
   * Read-your-writes by WAL position. When false reads ignore positions (and may be stale).
   * @default true
   */
  readYourWrites?: boolean
  /**
   * How long a read may wait for a replica to replay the context's position before it goes to
   * the primary. 0 sends it to the primary at once.
   * @default 50
   */
  rywWaitMs?: number
  /**
   * How often replay positions are polled while reads wait for them.
   * @default 10
   */
  rywPollIntervalMs?: number
  /**
   * Outside any `router.run()` context, reads must reach the highest position this process wrote
   * (`'process'`: safe, fewer replica reads) or nothing (`'none'`).
   * @default 'process'
   */
  outsideContext?: 'process' | 'none'
  /**
   * Secret for HMAC-signing consistency tokens. With it, a token edited by a client is rejected
   * (its reads go to the primary); without it tokens are only checked for format.
   * @default undefined
   */
  tokenSecret?: string
  /**
   * What a read does when every replica is excluded: go to the primary, or throw
   * `NoReplicaAvailableError`.
   * @default 'primary'
   */
  whenNoReplica?: 'primary' | 'error'
  /**
   * A read on a replica that has not answered after this many milliseconds is abandoned (its
   * connection is destroyed), the replica gets an immediate health check, and the read runs on
   * another node. Independently, reads running on a replica that gets excluded (a failed check)
   * are moved at once. 0: no per-read limit.
   * @default 30000
   */
  replicaReadTimeoutMs?: number
  /**
   * Each statement on the primary (single queries, and each statement of a transaction or
   * `connection()`) that takes longer is cut off (its connection closed) with
   * `QueryTimeoutError`. 0: no limit (then a hung primary hangs writes).
   * @default 30000
   */
  queryTimeoutMs?: number
  /**
   * Getting a connection from any node's pool (connecting included) takes at most this long.
   * Applied as pg's `connectionTimeoutMillis` on pools that have none set.
   * @default 5000
   */
  connectTimeoutMs?: number
  /**
   * A replica whose replay is more than this many seconds behind is excluded.
   * @default 10
   */
  maxLagSeconds?: number
  /**
   * A replica more than this many bytes of WAL behind the primary is excluded.
   * @default 16777216 (16 MiB)
   */
  maxLagBytes?: number
  /**
   * Interval of the health and lag checks.
   * @default 500
   */
  monitorIntervalMs?: number
  /**
   * A check that takes longer counts as a failure (a paused or unreachable server).
   * @default 2000
   */
  checkTimeoutMs?: number
  /**
   * Consecutive lagging checks before a replica is excluded (errors exclude at once).
   * @default 2
   */
  excludeAfterChecks?: number
  /**
   * Consecutive good checks (lag under half the limits) before an excluded replica rejoins.
   * @default 3
   */
  rejoinAfterChecks?: number
  /**
   * `pg-cursor`'s `Cursor` class, needed for `.stream()` (streams run on the primary).
   * @default undefined
   */
  cursor?: PostgresCursorConstructor
  /**
   * Functions you declare read-only although `pg_proc` marks them volatile (a report function
   * that only reads): a select calling them may run on a replica. Names as called (`my_report`
   * or `app.my_report`). Built in: `random`, `clock_timestamp`, `gen_random_uuid`, `pg_sleep`, ….
   * @default []
   */
  readOnlyFunctions?: readonly string[]
  /**
   * Functions you declare writing (or changing session state) whatever `pg_proc` says, e.g. a
   * function marked `stable` that is not. A query calling one runs on the primary and advances
   * the context's read-your-writes position.
   * @default []
   */
  writingFunctions?: readonly string[]
  /**
   * A pino-compatible logger (`pino()` passes as is): replica exclusions and rejoins, primary
   * changes and failed replica discovery are logged (warn / info). Per-query events are on
   * `db.router.on('route', …)` instead.
   * @default undefined (silent)
   */
  logger?: Logger
  /**
   * A metrics hook: `increment(name, labels?, value?)` and `observe(name, value, labels?)`, both
   * optional, called on every routing decision, retry, read-your-writes wait and health change
   * (names in {@link MetricsHook}); a hook that throws never breaks a query. `promClientMetrics()`
   * adapts prom-client. `router.metrics()` returns the same counts as a snapshot either way.
   * @default undefined
   */
  metrics?: MetricsHook
}

export interface ResolvedOptions {
  readonly primaries: readonly NodeInput[]
  readonly replicas: readonly NodeInput[]
  readonly discoverReplicas: ReplicaDiscovery | undefined
  readonly discoverIntervalMs: number
  readonly balance: BalanceStrategy | Balancer
  readonly readYourWrites: boolean
  readonly rywWaitMs: number
  readonly rywPollIntervalMs: number
  readonly outsideContext: 'process' | 'none'
  readonly tokenSecret: string | undefined
  readonly whenNoReplica: 'primary' | 'error'
  readonly replicaReadTimeoutMs: number
  readonly queryTimeoutMs: number
  readonly connectTimeoutMs: number
  readonly maxLagSeconds: number
  readonly maxLagBytes: number
  readonly monitorIntervalMs: number
  readonly checkTimeoutMs: number
  readonly excludeAfterChecks: number
  readonly rejoinAfterChecks: number
  readonly cursor: PostgresCursorConstructor | undefined
  readonly logger: Logger | undefined
  readonly metrics: MetricsHook | undefined
  readonly readOnlyFunctions: readonly string[]
  readonly writingFunctions: readonly string[]
}

const STRATEGIES: readonly BalanceStrategy[] = [
  'round-robin',
  'random',
  'weighted',
  'least-outstanding',
  'p2c',
]

export function resolveOptions(options: ReplicatedKyselyOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new ReadReplicaOptionsError(
      'an options object is required: { primary: new pg.Pool(…), replicas: […] }',
    )
  const balance = options.balance ?? 'least-outstanding'
  if (typeof balance === 'string' ? !STRATEGIES.includes(balance) : typeof balance?.pick !== 'function') {
    throw new ReadReplicaOptionsError(
      `option balance must be one of ${STRATEGIES.join(', ')} or a Balancer`,
      {
        option: 'balance',
      },
    )
  }
  return {
    primaries: checkPrimaries(options.primary),
    replicas: checkReplicas(options.replicas),
    discoverReplicas: checkFunctionOption<ReplicaDiscovery>(
      'discoverReplicas',
      options.discoverReplicas,
      'a function returning the replica list',
    ),
    discoverIntervalMs: checkNumber('discoverIntervalMs', options.discoverIntervalMs, 30_000, 100),
    balance,
    readYourWrites: checkBoolean('readYourWrites', options.readYourWrites, true),
    rywWaitMs: checkNumber('rywWaitMs', options.rywWaitMs, 50),
    rywPollIntervalMs: checkNumber('rywPollIntervalMs', options.rywPollIntervalMs, 10, 1),
    outsideContext: checkOneOf('outsideContext', options.outsideContext, ['process', 'none'], 'process'),
    tokenSecret: checkSecret(options.tokenSecret),
    whenNoReplica: checkOneOf('whenNoReplica', options.whenNoReplica, ['primary', 'error'], 'primary'),
    replicaReadTimeoutMs: checkNumber('replicaReadTimeoutMs', options.replicaReadTimeoutMs, 30_000),
    queryTimeoutMs: checkNumber('queryTimeoutMs', options.queryTimeoutMs, 30_000),
    connectTimeoutMs: checkNumber('connectTimeoutMs', options.connectTimeoutMs, 5_000),
    maxLagSeconds: checkNumber('maxLagSeconds', options.maxLagSeconds, 10),
    maxLagBytes: checkNumber('maxLagBytes', options.maxLagBytes, 16 * 1024 * 1024),
    monitorIntervalMs: checkNumber('monitorIntervalMs', options.monitorIntervalMs, 500, 10),
    checkTimeoutMs: checkNumber('checkTimeoutMs', options.checkTimeoutMs, 2_000, 10),
    excludeAfterChecks: checkNumber('excludeAfterChecks', options.excludeAfterChecks, 2, 1),
    rejoinAfterChecks: checkNumber('rejoinAfterChecks', options.rejoinAfterChecks, 3, 1),
    cursor: checkFunctionOption<PostgresCursorConstructor>(
      'cursor',
      options.cursor,
      "pg-cursor's Cursor class",
    ),
    logger: checkLogger<Logger>(options.logger),
    metrics: checkMetricsHook<MetricsHook>(options.metrics),
    readOnlyFunctions: checkNames('readOnlyFunctions', options.readOnlyFunctions),
    writingFunctions: checkNames('writingFunctions', options.writingFunctions),
  }
}
