import { randomBytes } from 'node:crypto'
import { CacheCounters } from './cache-counters.js'
import { CacheReads } from './cache-reads.js'
import { CacheWrites } from './cache-writes.js'
import { CircuitBreaker } from './circuit-breaker.js'
import { EntryCodec } from './entry-codec.js'
import { defaultPolicy } from './entry-policy.js'
import { FlightLoader } from './flight-loader.js'
import { Flights } from './flights.js'
import { InvalidationBus, InvalidationPublisher } from './invalidation-bus.js'
import { KeyLayout } from './key-layout.js'
import { LeaseTokens } from './lease-tokens.js'
import { createRunLoad } from './loader-call.js'
import { LocalView } from './local-view.js'
import { MemoryTier } from './memory-tier.js'
import { MissRate } from './miss-rate.js'
import type { ResolvedOptions } from './options.js'
import { PendingInvalidations } from './pending-invalidations.js'
import { type RedisClient, RedisTier } from './redis-tier.js'
import { ReplayDriver } from './replay-driver.js'
import { Semaphore } from './semaphore.js'
import { TagBookkeeping } from './tag-bookkeeping.js'

/** The parts of one cache, wired together; the facade (`ReadThroughCache`) only delegates to them. */
export interface CacheParts {
  view: LocalView
  reads: CacheReads
  writes: CacheWrites
  tier: RedisTier
  breaker: CircuitBreaker
  counters: CacheCounters
  loads: Semaphore
  pending: PendingInvalidations
  /** `undefined` in memory-only mode. */
  replayDriver: ReplayDriver | undefined
  bus: InvalidationBus | undefined
}

/** Builds every part of a cache from its resolved options. */
export function buildCacheParts(o: ResolvedOptions): CacheParts {
  const origin = randomBytes(6).toString('base64url')
  const keys = new KeyLayout(o.prefix)
  const counters = new CacheCounters(o.metrics, o.logger)
  const codec = new EntryCodec(o.serializer, o.logger)
  const policy = defaultPolicy(o.freshness)
  const breaker = new CircuitBreaker({
    failureThreshold: o.failureThreshold,
    openDurationMs: o.openDurationMs,
    onStateChange: (state) => {
      counters.circuitState(state)
      if (state === 'open') {
        o.logger?.warn({ circuit: state }, '[@scale/read-through-cache] Redis circuit opened')
        view.distrust()
      }
    },
  })
  const view = new LocalView(o.local, () => breaker.state === 'closed')
  // The tier and the queue of invalidations refer to each other: the tier replays the queue
  // before the first command after an outage, the queue replays through the tier.
  let pending: PendingInvalidations | undefined
  const hasPending = () => (pending?.size ?? 0) > 0
  const redis = o.redis
  // Memory-only: a stand-in with the tier's public surface (see memory-tier.ts); the local tier
  // hears of every invalidation (there is no other process), so it is trusted as when subscribed.
  if (redis === undefined) view.subscribed = true
  const tier =
    redis === undefined
      ? (new MemoryTier() as unknown as RedisTier)
      : new RedisTier({
          client: redis,
          breaker,
          commandTimeoutMs: o.commandTimeoutMs,
          coalesceWrites: o.coalesceWrites,
          onProbe: async () => pending?.replay(),
          hasPending,
          onError: () => counters.count('redisErrors'),
        })
  const publisher = new InvalidationPublisher(tier, keys.channel, origin, o.local !== false)
  let replayDriver: ReplayDriver | undefined
  pending = new PendingInvalidations({
    tier,
    keys,
    logger: o.logger,
    busMessage: o.local === false ? undefined : (changed) => InvalidationBus.encode(origin, changed),
    onQueued: () => {
      counters.count('invalidationsQueued')
      replayDriver?.queued()
    },
    onReplayed: (replayed) => {
      for (const key of replayed) view.invalidate(key)
    },
  })
  const queue = pending
  replayDriver =
    redis === undefined
      ? undefined
      : new ReplayDriver({
          client: redis,
          intervalMs: Math.max(50, Math.min(250, o.openDurationMs)),
          commandTimeoutMs: o.commandTimeoutMs,
          hasPending,
          replay: (force) => tier.replayPending(force),
          replayVia: (connection) => queue.replay(connection),
        })
  const tags = new TagBookkeeping({
    tier,
    keys,
    publish: (changed) => publisher.publish(changed),
    onStaleSetPrevented: () => counters.count('staleSetsPrevented'),
  })
  const loads = new Semaphore(o.maxConcurrentLoads)
  const runLoad = createRunLoad(loads, () => counters.count('loads'), o.prefix)
  const tokens = new LeaseTokens(origin)
  const missRate = new MissRate()
  const flightLoader = new FlightLoader({
    options: o,
    tier,
    keys,
    codec,
    tags,
    tokens,
    pending,
    missRate,
    counters,
    runLoad,
    view,
    publisher,
    memoryOnly: redis === undefined,
  })
  const flights = new Flights(view, flightLoader, tokens, counters)
  const parts = { keys, codec, defaultPolicy: policy, view, tier }
  return {
    view,
    reads: new CacheReads({ ...parts, options: o, flights, counters, missRate, runLoad }),
    writes: new CacheWrites({ ...parts, options: o, tags, pending, publisher, events: counters.events }),
    tier,
    breaker,
    counters,
    loads,
    pending,
    replayDriver,
    bus:
      o.local === false || redis === undefined
        ? undefined
        : createBus(redis, keys, origin, view, queue, counters),
  }
}

function createBus(
  redis: RedisClient,
  keys: KeyLayout,
  origin: string,
  view: LocalView,
  pending: PendingInvalidations,
  counters: CacheCounters,
): InvalidationBus {
  return new InvalidationBus({
    client: redis,
    channel: keys.channel,
    origin,
    onAll: () => view.invalidateAll(),
    onKeys: (changed) => {
      for (const key of changed) view.invalidate(key)
    },
    onSubscribed: () => {
      // Whatever was published while we were not subscribed is lost: start the local tier
      // afresh, and keep a GET sent before now or a load running now from filling it with a
      // value whose invalidation we may have missed.
      view.invalidateAll()
      view.subscribed = true
    },
    onDisconnected: () => {
      // Invalidations may be missed from now on: bound how long what we hold is trusted.
      view.subscribed = false
      view.distrust()
    },
    onServerBack: () => nudgeReconnect(redis, pending),
    onError: () => counters.count('redisErrors'),
  })
}

/**
 * The invalidation connection is back, so the server is. With invalidations waiting for replay,
 * a client still sleeping in its reconnect back-off (ioredis' default grows to 2 s) is asked to
 * reconnect now: meanwhile every other process already reads the old values from Redis. Its
 * 'ready' then triggers the replay. Only a single `Redis` (a `Cluster` reconnects by its own
 * rules), and only in the `reconnecting` state, where ioredis' `connect()` starts at once.
 */
function nudgeReconnect(redis: RedisClient, pending: PendingInvalidations): void {
  const client = redis as RedisClient & { isCluster?: boolean }
  if (pending.size === 0 || client.isCluster === true || client.status !== 'reconnecting') return
  client.connect().catch(() => {})
}
