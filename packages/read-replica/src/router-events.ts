import type { RouteReason } from './classify-query.js'
import type { Logger, MetricsSink } from './observability.js'

/** One query's routing decision, emitted after it finished (successfully or not). */
export interface RouteEvent {
  /** name of the node that ran the query */
  readonly node: string
  readonly role: 'primary' | 'replica'
  readonly reason: RouteReason
  /** the Kysely root node kind, e.g. `SelectQueryNode`, `RawNode` */
  readonly queryKind: string
  readonly durationMs: number
  /** milliseconds spent waiting for a replica to replay the context's position */
  readonly waitedMs: number
  /** 1 for the first try; >1 when a failed read was retried on another node */
  readonly attempt: number
  readonly ok: boolean
}

export interface HealthEvent {
  readonly node: string
  readonly reason: 'error' | 'lagging' | 'promoted' | 'healthy'
  readonly lagBytes: number | undefined
  readonly lagSeconds: number | undefined
  readonly error: unknown
}

export interface PrimaryChangedEvent {
  readonly from: string
  readonly to: string
}

export interface RouterEvents {
  route: RouteEvent
  'replica-excluded': HealthEvent
  'replica-rejoined': HealthEvent
  'primary-changed': PrimaryChangedEvent
}

type Listener<T> = (event: T) => void

/** A tiny typed emitter; a throwing listener is isolated so it can never break a query. */
export class RouterEventEmitter {
  readonly #listeners = new Map<keyof RouterEvents, Set<Listener<never>>>()
  #count = 0

  on<K extends keyof RouterEvents>(event: K, listener: Listener<RouterEvents[K]>): () => void {
    let set = this.#listeners.get(event)
    if (!set) {
      set = new Set()
      this.#listeners.set(event, set)
    }
    set.add(listener as Listener<never>)
    this.#count++
    return () => {
      if (set.delete(listener as Listener<never>)) this.#count--
    }
  }

  /** Cheap check so the hot path builds no event object when nobody listens. */
  has(event: keyof RouterEvents): boolean {
    return this.#count > 0 && (this.#listeners.get(event)?.size ?? 0) > 0
  }

  emit<K extends keyof RouterEvents>(event: K, payload: RouterEvents[K]): void {
    const set = this.#listeners.get(event)
    if (!set) return
    for (const listener of set) {
      try {
        ;(listener as Listener<RouterEvents[K]>)(payload)
      } catch {
        // a listener's bug must not fail the query that triggered it
      }
    }
  }
}

/** Logs health changes (not per-query events) to a pino-compatible logger. */
export function logRouterEvents(events: RouterEventEmitter, logger: Logger): void {
  events.on('replica-excluded', (e) =>
    logger.warn(
      { node: e.node, reason: e.reason, lagBytes: e.lagBytes, lagSeconds: e.lagSeconds, err: e.error },
      '[@scale/read-replica] replica excluded',
    ),
  )
  events.on('replica-rejoined', (e) =>
    logger.info({ node: e.node }, '[@scale/read-replica] replica rejoined'),
  )
  events.on('primary-changed', (e) =>
    logger.warn({ from: e.from, to: e.to }, '[@scale/read-replica] primary changed'),
  )
}

/** Counts health changes through the metrics hook. */
export function countRouterEvents(events: RouterEventEmitter, sink: MetricsSink): void {
  events.on('replica-excluded', (e) =>
    sink.increment('replica_health_changes_total', { node: e.node, event: 'excluded', reason: e.reason }),
  )
  events.on('replica-rejoined', (e) =>
    sink.increment('replica_health_changes_total', { node: e.node, event: 'rejoined', reason: e.reason }),
  )
  events.on('primary-changed', () => sink.increment('replica_primary_changes_total'))
}
