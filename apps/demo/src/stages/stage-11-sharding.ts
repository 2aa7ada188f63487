import type { MoveReport, ShardMap } from '@scale/sharding'
import { runLoad } from '../load/run-load.js'
import { auditWrites, keysMoved, usersPerShard } from '../sharding/count-rows.js'
import { BUCKETS, startShardTier } from '../sharding/shard-tier.js'
import { shardWriteMix, type WriteLedger } from '../sharding/write-mix.js'
import type { Topology } from '../topology/topology.js'
import type { DrillResult, Stage, StageContext } from './stage.js'

const SHARDS = ['s1', 's2', 's3', 's4']
const NEW_SHARD = 's5'
const HOT_SHARD = 'hot'
/** User 1 is the most read and written user of the skewed load: the celebrity. */
const CELEBRITY = 1

const spread = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([shard, n]) => `${shard} ${n.toLocaleString('en')}`)
    .join(', ')

/** The shards, the mover and the sharded web servers behind the stage's HAProxy. */
async function startSharding(topology: Topology, context: StageContext) {
  const lb = topology.loadBalancer
  if (!lb) throw new Error('stage 11 needs its load balancer')
  const tier = await startShardTier(topology, {
    shards: SHARDS,
    extra: NEW_SHARD,
    hot: HOT_SHARD,
    celebrity: CELEBRITY,
    users: context.users,
    replicas: 1,
    webServers: 2,
    logDir: topology.spec.logDir,
    onStep: (step) => context.progress.step(`start ${step}`),
  })
  for (const server of tier.web) {
    await lb.addBackend({ name: server.name, port: server.port })
    await lb.waitForServer(server.name, 'UP')
  }
  return { tier, lb }
}

/**
 * @scale/sharding: users over 4 shards (each a primary and a streaming replica), the celebrity on a
 * shard of its own, then a live move to 5 shards under a write load through the app.
 */
export const sharding: Stage = {
  number: 11,
  title: 'sharding',
  whatAppears: '@scale/sharding: users over 4 shards, a celebrity alone on a 5th, a live move to 5 shards',
  // The stage's own database is the control database (shard map, move state); the shards and
  // their web servers are started by the stage, behind the topology's HAProxy.
  topology: () => ({
    replicas: 0,
    webServers: 0,
    loadBalancer: true,
    redis: false,
    edge: false,
    unixSocket: false,
    app: {},
    // The users live on the shards; the stage's own database holds only the shard map and moves.
    users: 0,
  }),
  async serve(topology, context) {
    const { tier, lb } = await startSharding(topology, context)
    const urls: Record<string, string> = { entry: lb.url }
    for (const [name, cluster] of Object.entries(tier.clusters)) {
      urls[`shard ${name} primary`] = cluster.primary.url
      for (const replica of cluster.replicas) urls[`shard ${name} ${replica.name}`] = replica.url
    }
    for (const server of tier.web) urls[server.name] = server.url
    return urls
  },
  async run(topology, context) {
    const { progress, durations, connections, users } = context
    const { tier, lb } = await startSharding(topology, context)
    const before = await usersPerShard(tier.primaries)
    const ledger: WriteLedger = { sent: 0, acknowledged: new Map() }

    progress.step('warm-up')
    await runLoad({
      url: lb.url,
      durationMs: durations.warmupMs,
      connections,
      mix: shardWriteMix(users, CELEBRITY, ledger),
    })
    progress.step(`steady load, ${durations.steadyMs / 1000} s`)
    const load = await runLoad({
      url: lb.url,
      durationMs: durations.steadyMs,
      connections,
      mix: shardWriteMix(users, CELEBRITY, ledger),
      onProgress: (n) => progress.requests(n),
    })

    // The live move: the load runs from before the first bucket moves until after the last one.
    const plan = await tier.mover.plan([...SHARDS, NEW_SHARD])
    progress.step(`drill: move ${plan.moves.length} of ${BUCKETS} buckets to ${NEW_SHARD} under load`)
    const events: DrillResult['events'] = []
    const start = Date.now()
    const leadMs = Math.min(2_000, durations.drillMs / 4)
    let reports: MoveReport[] = []
    let moved = 0
    let moveStarted!: () => void
    const started = new Promise<void>((resolve) => {
      moveStarted = resolve
    })
    const move = started.then(async () => {
      events.push({ atMs: Date.now() - start, what: `move to ${SHARDS.length + 1} shards begins` })
      progress.note(`  moving ${plan.moves.length} buckets`)
      const mover = tier.mover
      const timed: MoveReport[] = []
      for (const step of plan.moves) {
        const report = await mover.moveBucket(step.bucket, step.to)
        timed.push(report)
        moved++
        // Each cut-over on the reshard timeline: "n/total source→target write pause" (32 buckets, a fifth move).
        events.push({
          atMs: Date.now() - start,
          what: `${moved}/${plan.moves.length} ${report.source}→${report.target} ${report.pauseMs} ms`,
        })
      }
      reports = timed
      // A little load after the last cut-over: routers on the final map.
      await new Promise((resolve) => setTimeout(resolve, leadMs))
    })
    const drillLoad = await runLoad({
      url: lb.url,
      durationMs: 10 * 60_000,
      connections,
      mix: shardWriteMix(users, CELEBRITY, ledger),
      onProgress: (n) => progress.requests(n),
      at: [{ atMs: leadMs, run: async () => moveStarted() }],
      stopWhen: move,
    })
    await move

    const finalMap = (await tier.store.load()) as ShardMap
    const after = await usersPerShard(tier.primaries)
    const audit = await auditWrites(tier.primaries, finalMap, ledger)
    const movedUsers = keysMoved(tier.initialMap, finalMap, users)
    const longestPauseMs = Math.max(0, ...reports.map((r) => r.pauseMs))
    const meanPauseMs = reports.length
      ? Math.round(reports.reduce((sum, r) => sum + r.pauseMs, 0) / reports.length)
      : 0
    const errors = drillLoad.connectionErrors + drillLoad.serverErrors
    const firstEvent = events[0]?.atMs ?? 0
    const lastFailure = drillLoad.failureTimes.at(-1)
    const drill: DrillResult = {
      name: `live move to ${SHARDS.length + 1} shards`,
      events,
      errors,
      recoveryMs: lastFailure === undefined ? 0 : Math.max(0, lastFailure - firstEvent),
      load: drillLoad,
      timeline: drillLoad.timeline,
      measures: {
        bucketsMoved: reports.length,
        keysMovedShare: Math.round((movedUsers / users) * 1000) / 1000,
        minimumShare: plan.minimumFraction,
        longestWritePauseMs: longestPauseMs,
        meanWritePauseMs: meanPauseMs,
        longestRequestMs: drillLoad.latencyMs.max,
        writesSent: audit.sent,
        writesAcknowledged: audit.acknowledged,
        lostWrites: audit.lost,
        duplicatedWrites: audit.duplicated,
        misplacedRows: audit.misplaced,
        storedUnacknowledged: audit.storedUnacknowledged,
        counterMismatches: audit.counterMismatches,
        mapEpoch: finalMap.epoch,
      },
    }
    return {
      load,
      measures: {
        shards: SHARDS.length,
        usersBefore: spread(before),
        usersAfter: spread(after),
        celebrityShard: tier.initialMap.shardOf(CELEBRITY),
      },
      drill,
      notes: [
        `Users per shard before the move: ${spread(before)} (the celebrity, user ${CELEBRITY}, alone on ${HOT_SHARD}); ` +
          `after: ${spread(after)}.`,
        `The move to ${SHARDS.length + 1} shards took ${reports.length} of ${BUCKETS} buckets, one at a time under load: ` +
          `${movedUsers.toLocaleString('en')} users (${((movedUsers / users) * 100).toFixed(1)}%) changed shard against ` +
          `the 1/(n+1) = ${(plan.minimumFraction * 100).toFixed(0)}% minimum of an exact split (key % N would move 80%); ` +
          `with ${BUCKETS} buckets the new shard gets ${reports.length}, a share rounded to whole buckets.`,
        `Writes to a moving bucket paused ${meanPauseMs} ms on average, ${longestPauseMs} ms at the longest (fence to new map); ` +
          `the slowest request of the phase took ${drillLoad.latencyMs.max} ms; ${errors} failed requests.`,
        `${audit.sent.toLocaleString('en')} posts sent over the whole stage, ${audit.acknowledged.toLocaleString('en')} acknowledged: ` +
          `${audit.lost} lost, ${audit.duplicated} duplicated, ${audit.misplaced} on a wrong shard, ${audit.counterMismatches} ` +
          `post counters off, counted on every shard after the move (${audit.storedUnacknowledged} stored whose answer was still in flight when a load phase ended).`,
      ],
    }
  },
}
