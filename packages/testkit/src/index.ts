export { haproxyBinary, postgresBindir, redisBinary } from './binaries.js'
export {
  BinaryMissingError,
  CommandFailedError,
  ServerStartError,
  ServerTimeoutError,
  TestkitError,
} from './errors.js'
export { freePort } from './free-port.js'
export {
  type HaproxyBackend,
  HaproxyServer,
  type HaproxyServerState,
  type StartHaproxyOptions,
  startHaproxy,
} from './haproxy.js'
export {
  PostgresCluster,
  PostgresNode,
  type PostgresSettings,
  type StartPostgresOptions,
  startPostgres,
  startPostgresClusters,
} from './postgres.js'
export { RedisServer, type StartRedisOptions, startRedis } from './redis.js'
export { RedisCluster, type StartRedisClusterOptions, startRedisCluster } from './redis-cluster.js'
export { uniqueName } from './unique-name.js'
export { type StartVarnishOptions, startVarnish, type VarnishCounters, VarnishServer } from './varnish.js'
export { waitFor } from './wait.js'
