export type { Balancer, BalancerCandidate, BalanceStrategy } from './balancer.js'
export {
  leastOutstandingBalancer,
  powerOfTwoChoicesBalancer,
  randomBalancer,
  roundRobinBalancer,
  weightedBalancer,
} from './balancer.js'
export type { RouteReason } from './classify-query.js'
export type { NodeConfig, NodeInput, PoolLike } from './database-node.js'
export {
  ConnectFailedError,
  InvalidOptionsError,
  MalformedTokenError,
  NoReplicaAvailableError,
  PrimaryConnectionLostError,
  PrimaryReadOnlyError,
  PrimaryUnreachableError,
  QueryTimeoutError,
  ReadReplicaClosedError,
  ReadReplicaError,
  type ReadReplicaErrorCode,
  type ReadReplicaErrorContext,
  ReadReplicaOptionsError,
  RouterClosedError,
  StreamUnavailableError,
  TransactionRolledBackError,
  WritesPreventedError,
} from './errors.js'
export type { Logger, LogMethod, MetricLabels, MetricsHook, RouterLogger } from './observability.js'
export type { ReplicatedKyselyOptions } from './options.js'
export {
  type PromClientMetricsOptions,
  type PromClientModule,
  type PromMetricConfiguration,
  promClientMetrics,
} from './prometheus.js'
export type { ReplicaDiscovery } from './replica-membership.js'
export type { ReplicaRouter, ReplicaSnapshot, RouterSnapshot, RoutingMode } from './replica-router.js'
export {
  createReplicatedKysely,
  ReplicatedKysely,
  type ReplicatedKyselyConstructor,
} from './replicated-kysely.js'
export type { HealthEvent, PrimaryChangedEvent, RouteEvent, RouterEvents } from './router-events.js'
export type { NodeCounters, RouterCounters } from './router-metrics.js'
