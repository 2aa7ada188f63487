import {
  createWriteCoalescer,
  type DeadlineHandlers,
  RedisScript,
  type WriteCoalescer,
  withCommandDeadline,
} from '@scale/ioredis-coalesce'
import type { Cluster, Redis } from 'ioredis'
import type { CircuitBreaker } from './circuit-breaker.js'
import { commandHandlers } from './command-handlers.js'
import { CacheUnavailableError } from './errors.js'
import type { EntryKeys, TagKeys } from './key-layout.js'
import { type LeaseRead, toLeaseRead } from './lease-read.js'
import {
  ADD_TAG_MEMBER,
  EXPIRE_ENTRY,
  GET_OR_LEASE,
  RELEASE_LEASE,
  RELEASE_WITH_OUTCOME,
  SET_AND_VOID_LEASE,
  SET_IF_LEASE,
  TAKE_TAG_MEMBERS,
} from './lua-scripts.js'
import { isCrossSlot, ScriptBatch } from './script-batch.js'

/** A tag as read with a member add: its epoch (`null`: never bumped) and when it was last bumped (0: never). */
export interface TagState {
  epoch: string | null
  bumpedAt: number
}

/** The user's ioredis client: a single `Redis` or a `Cluster`. */
export type RedisClient = Redis | Cluster

export type { LeaseRead, LeaseStatus } from './lease-read.js'

const SCRIPTS = {
  release: new RedisScript(RELEASE_LEASE),
  releaseWithOutcome: new RedisScript(RELEASE_WITH_OUTCOME),
  setAndVoid: new RedisScript(SET_AND_VOID_LEASE),
  addTagMember: new RedisScript(ADD_TAG_MEMBER),
  takeTagMembers: new RedisScript(TAKE_TAG_MEMBERS),
  expire: new RedisScript(EXPIRE_ENTRY),
}

export interface RedisTierOptions {
  client: RedisClient
  breaker: CircuitBreaker
  commandTimeoutMs: number
  /** Cork a single client's socket per event-loop turn (@scale/ioredis-coalesce). */
  coalesceWrites: boolean
  /** Runs before the first command after an outage (the half-open probe): replays queued invalidations. */
  onProbe: () => Promise<void>
  /** `true` while invalidations wait for replay; they are then replayed before the next command too. */
  hasPending: () => boolean
  onError: (error: unknown) => void
}

const noop = () => {}
const isOne = (reply: unknown) => reply === 1
const firstIsOne = (reply: readonly unknown[], at: number) => reply[at] === 1

/** `prefix` as a literal in a SCAN MATCH pattern. */
function escapeGlob(prefix: string): string {
  return prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

/**
 * Every Redis command of the cache goes through here: a per-command timeout (the user's client may
 * queue commands offline for a long time while it reconnects; a cache read must not wait for that),
 * and the circuit breaker. Errors are always thrown as `CacheUnavailableError`, never left dangling.
 */
export class RedisTier {
  readonly #client: RedisClient
  readonly #breaker: CircuitBreaker
  readonly #timeoutMs: number
  readonly #onProbe: () => Promise<void>
  readonly #hasPending: () => boolean
  readonly #onError: (error: unknown) => void
  readonly isCluster: boolean
  /**
   * Corks a single client's socket for the rest of the event-loop turn, so the commands that many
   * concurrent calls issue together leave in one `writev` instead of one syscall each.
   */
  readonly #writes: WriteCoalescer
  /** The two scripts of every miss, sent once per turn for all the keys that missed in it. */
  readonly #getOrLease: ScriptBatch
  readonly #setIfLease: ScriptBatch

  constructor(options: RedisTierOptions) {
    this.#client = options.client
    this.#breaker = options.breaker
    this.#timeoutMs = options.commandTimeoutMs
    this.#onProbe = options.onProbe
    this.#hasPending = options.hasPending
    this.#onError = options.onError
    this.isCluster = (options.client as { isCluster?: boolean }).isCluster === true
    this.#writes = createWriteCoalescer(options.client, { enabled: options.coalesceWrites })
    const batching = options.coalesceWrites && !this.isCluster
    const release = () => this.#writes.release()
    this.#getOrLease = new ScriptBatch(options.client, GET_OR_LEASE, batching, release)
    this.#setIfLease = new ScriptBatch(options.client, SET_IF_LEASE, batching, release)
  }

  /** `true` when a command would be attempted now (circuit closed, or due for a probe). */
  get available(): boolean {
    return this.#breaker.state === 'closed'
  }

  /**
   * The hot path of every cache operation, so it allocates little: one wrapping promise, one timer,
   * one `then` on the command. The breaker and error mapping happen in the settle callbacks.
   */
  #exec<T>(name: string, command: () => Promise<T>): Promise<T> {
    this.#writes.hold()
    const permit = this.#breaker.permit(Date.now())
    if (permit === 'reject') {
      return Promise.reject(new CacheUnavailableError(name, { reason: 'circuit-open' }))
    }
    const probe = permit === 'probe'
    if (probe || this.#hasPending()) return this.#execAfterReplay(name, command, probe)
    return this.#guard(name, command, probe)
  }

  /**
   * Replays the queued invalidations now, on their own (no caller's command behind them), as the
   * half-open probe when the circuit is open; `force` lets that probe through before
   * `openDurationMs` has passed. Never throws: a failure counts for the breaker and waits for the
   * next attempt.
   */
  async replayPending(force: boolean): Promise<void> {
    const permit = this.#breaker.permit(Date.now(), force)
    if (permit === 'reject') return
    await this.#guard('replay', () => this.#onProbe(), permit === 'probe').catch(noop)
  }

  async #execAfterReplay<T>(name: string, command: () => Promise<T>, probe: boolean): Promise<T> {
    await this.#guard('replay', () => this.#onProbe(), probe, true)
    return this.#guard(name, command, probe)
  }

  /** Applies the timeout to `command` and reports its outcome to the breaker. */
  #guard<T>(name: string, command: () => Promise<T>, probe: boolean, deferSuccess = false): Promise<T> {
    // The everyday case (no probe) reuses one handlers object per command name: none made per command.
    const everyday = !probe && !deferSuccess
    let handlers = everyday ? this.#everydayHandlers.get(name) : undefined
    if (handlers === undefined) {
      handlers = commandHandlers(name, probe, deferSuccess, this.#breaker, this.#onError)
      if (everyday) this.#everydayHandlers.set(name, handlers)
    }
    return withCommandDeadline(command, this.#timeoutMs, handlers)
  }

  readonly #everydayHandlers = new Map<string, DeadlineHandlers>()

  /** `awaited`: the holder this caller waits on, whose outcome it takes if that holder stored nothing. */
  getOrLease(
    entry: EntryKeys,
    now: number,
    token: string,
    leaseTtlMs: number,
    awaited: string | undefined,
    force = false,
  ): Promise<LeaseRead> {
    return this.#exec('getOrLease', () =>
      this.#getOrLease.run(
        [entry.value, entry.lease, entry.outcome],
        [now, token, leaseTtlMs, awaited ?? '', force ? '1' : ''],
        toLeaseRead,
      ),
    )
  }

  /** Releases the lease and tells the callers that waited on `token` what came of the load. */
  /** `true` if the lease was still the caller's (else a write voided it and nothing was left). */
  releaseWithOutcome(entry: EntryKeys, token: string, outcome: string, px: number): Promise<boolean> {
    return this.#exec('releaseLease', () =>
      SCRIPTS.releaseWithOutcome
        .run(this.#client, [entry.lease, entry.outcome], [token, outcome, px])
        .then(isOne),
    )
  }

  /**
   * On every miss: one promise for the command, no async wrapper around it. `onSent` runs once the
   * write has left for Redis (not if the circuit refused it).
   */
  setIfLease(
    entry: EntryKeys,
    token: string,
    text: string,
    px: number,
    onSent?: () => void,
  ): Promise<boolean> {
    return this.#exec('setIfLease', () =>
      this.#setIfLease.run([entry.value, entry.lease], [token, text, px], firstIsOne, onSent),
    )
  }

  /** `true` if the lease was still the caller's. */
  releaseLease(entry: EntryKeys, token: string): Promise<boolean> {
    return this.#exec('releaseLease', () =>
      SCRIPTS.release.run(this.#client, [entry.lease], [token]).then(isOne),
    )
  }

  async set(entry: EntryKeys, text: string, px: number): Promise<void> {
    await this.#exec('set', () =>
      SCRIPTS.setAndVoid.run(this.#client, [entry.value, entry.lease], [text, px]),
    )
  }

  /** Plain SET with no lease check: only for `leases: false` (the control that shows stale sets). */
  async setUnguarded(entry: EntryKeys, text: string, px: number): Promise<void> {
    await this.#exec('set', () => this.#client.set(entry.value, text, 'PX', px))
  }

  get(entry: EntryKeys): Promise<string | null> {
    return this.#exec('get', () => this.#client.get(entry.value))
  }

  /** MGET on a single Redis; on a Cluster the keys live in different slots, so one GET each (ioredis pipelines them). */
  mget(entries: EntryKeys[]): Promise<(string | null)[]> {
    return this.#exec('mget', () => this.#mget(entries))
  }

  /**
   * Set once the server refused an MGET across slots (`CROSSSLOT`: a Redis in cluster mode behind a
   * plain client, as a one-shard managed "cluster" is): one GET per key from then on, as on a Cluster.
   */
  #mgetPerKey = false

  #mget(entries: EntryKeys[]): Promise<(string | null)[]> {
    if (this.isCluster || this.#mgetPerKey) {
      return Promise.all(entries.map((entry) => this.#client.get(entry.value)))
    }
    return this.#client.mget(entries.map((entry) => entry.value)).catch((error: unknown) => {
      if (entries.length < 2 || !isCrossSlot(error)) throw error
      this.#mgetPerKey = true
      return this.#mget(entries)
    })
  }

  /**
   * Deletes every key that starts with `prefix` (values, leases, outcomes, tag sets and epochs):
   * SCAN on a single Redis, on every master of a Cluster; UNLINK per key (keys of a scan batch may
   * sit in different slots). Returns how many keys were removed.
   */
  async clearPrefix(prefix: string): Promise<number> {
    const nodes = this.isCluster ? (this.#client as Cluster).nodes('master') : [this.#client as Redis]
    let removed = 0
    for (const node of nodes) {
      let cursor = '0'
      do {
        // One page per command (each under commandTimeoutMs and the breaker), not the whole scan.
        const [next, count] = await this.#exec('clear', async () => {
          const [after, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000)
          await Promise.all(keys.map((key) => node.unlink(key)))
          return [after, keys.length] as const
        })
        cursor = next
        removed += count
      } while (cursor !== '0')
    }
    return removed
  }

  /** Marks the value stale now (kept for SWR and grace) and voids the lease. */
  async expire(entry: EntryKeys, now: number): Promise<void> {
    await this.#exec('expire', () => SCRIPTS.expire.run(this.#client, [entry.value, entry.lease], [now]))
  }

  /** Deletes the value and voids the lease (one slot, so one DEL). */
  async invalidate(entries: EntryKeys[]): Promise<void> {
    await this.#exec('delete', () => this.invalidateRaw(entries))
  }

  /** `client`: another connection to the same server (the replay connection); default the user's client. */
  async invalidateRaw(entries: EntryKeys[], client: RedisClient = this.#client): Promise<void> {
    await Promise.all(entries.map((entry) => client.del(entry.value, entry.lease, entry.outcome)))
  }

  /** Reads the current epochs of tags (`null` when never bumped). */
  tagEpochs(tags: TagKeys[]): Promise<(string | null)[]> {
    return this.#exec('tagEpochs', () => Promise.all(tags.map((tag) => this.#client.get(tag.epoch))))
  }

  /** Adds a member to each tag and returns each tag's epoch and last bump time, read atomically with the add. */
  addTagMembers(tags: TagKeys[], member: string, px: number): Promise<TagState[]> {
    return this.#exec('addTagMembers', () =>
      Promise.all(
        tags.map(async (tag) => {
          const [epoch, bumpedAt] = (await SCRIPTS.addTagMember.run(
            this.#client,
            [tag.members, tag.epoch, tag.bumpedAt],
            [member, px],
          )) as [string, string]
          return { epoch: epoch === '' ? null : epoch, bumpedAt: bumpedAt === '' ? 0 : Number(bumpedAt) }
        }),
      ),
    )
  }

  /** Bumps the tag's epoch and takes its members into the set of `takeId` (see TAKE_TAG_MEMBERS). */
  takeTagMembers(tag: TagKeys, takeId: string): Promise<string[]> {
    return this.#exec('deleteByTag', () => this.takeTagMembersRaw(tag, takeId))
  }

  async takeTagMembersRaw(
    tag: TagKeys,
    takeId: string,
    client: RedisClient = this.#client,
  ): Promise<string[]> {
    const keys = [tag.members, tag.epoch, tag.bumpedAt, `${tag.taken}${takeId}`]
    return (await SCRIPTS.takeTagMembers.run(client, keys, [])) as string[]
  }

  /** `finishTakeRaw` on the user's client, under the command deadline and the breaker. */
  async finishTake(tag: TagKeys, takeId: string): Promise<void> {
    await this.#exec('deleteByTag', () => this.finishTakeRaw(tag, takeId, false))
  }

  /**
   * Ends the take `takeId` once its members' keys are deleted: removes what it took, or, after a
   * replay (`replayed`), leaves the mark 'done' for a day so a late first run takes nothing.
   */
  async finishTakeRaw(
    tag: TagKeys,
    takeId: string,
    replayed: boolean,
    client: RedisClient = this.#client,
  ): Promise<void> {
    const taken = `${tag.taken}${takeId}`
    await (replayed ? client.set(taken, 'done', 'PX', 86_400_000) : client.del(taken))
  }

  publish(channel: string, message: string): Promise<unknown> {
    return this.#exec('publish', () => this.#client.publish(channel, message))
  }

  publishRaw(channel: string, message: string, client: RedisClient = this.#client): Promise<unknown> {
    return client.publish(channel, message)
  }
}
