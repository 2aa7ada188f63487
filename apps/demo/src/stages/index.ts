import type { Stage } from './stage.js'
import { singleServer } from './stage-1-single-server.js'
import { databaseTier } from './stage-2-database-tier.js'
import { loadBalancer } from './stage-3-load-balancer.js'
import { replication } from './stage-4-replication.js'
import { cache } from './stage-5-cache.js'
import { cdn } from './stage-6-cdn.js'
import { statelessWeb } from './stage-7-stateless-web.js'
import { dataCenters } from './stage-8-data-centers.js'
import { messageQueue } from './stage-9-message-queue.js'
import { logsMetrics } from './stage-10-logs-metrics.js'
import { sharding } from './stage-11-sharding.js'

/** The progression, in order. */
export const STAGES: readonly Stage[] = [
  singleServer,
  databaseTier,
  loadBalancer,
  replication,
  cache,
  cdn,
  statelessWeb,
  dataCenters,
  messageQueue,
  logsMetrics,
  sharding,
]
