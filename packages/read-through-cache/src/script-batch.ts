import { RedisScript } from '@scale/ioredis-coalesce'
import type { Cluster, Redis } from 'ioredis'

/** A script in the batch form of `batchScript` (lua-scripts.ts). */
export interface BatchableScript {
  source: string
  /** Reply values per call. */
  width: number
}

/**
 * At most this many calls, and about this many bytes of arguments, per script call: a script runs
 * alone on Redis, so one must stay short (64 writes of 1 MB values are 64 calls, not one).
 */
const MAX_BATCH_CALLS = 64
const MAX_BATCH_BYTES = 256 * 1024

/** Reads one call's values out of a batch reply: `reply[at]` to `reply[at + width - 1]`. */
export type ReplyDecoder<T> = (reply: readonly unknown[], at: number) => T

interface PendingCall {
  keys: readonly string[]
  args: readonly (string | number)[]
  decode: ReplyDecoder<unknown>
  onSent: (() => void) | undefined
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

/**
 * Sends the calls of one script made in the same turn (until the current microtask queue is empty)
 * as one EVALSHA of its batch form, and puts it on the socket at once. A miss runs two scripts, and
 * when many keys miss together one script call for all of them costs Redis one command to parse and
 * one script start instead of one per key, and the client one command instead of many.
 *
 * Written at once, not held until the end of the loop turn with the other commands
 * (`createWriteCoalescer`): Redis starts on the batch while the process runs what the batch's
 * callers do next. `onSent` runs right after the batch left: the cache answers a load's callers
 * there, so its write reaches Redis before their next reads are even made.
 *
 * Calls keep their order on the connection relative to each other; a command sent directly in the
 * same turn (a plain GET, a DEL) may reach Redis first. Every caller in the cache is correct under
 * that: a deferred read sees a newer state, and a deferred compare-and-set of a lease fails if a
 * DEL overtook it.
 *
 * Disabled (a Cluster, whose keys live on different nodes, or `coalesceWrites: false`), each call is
 * its own script call, sent at once. A server that refuses a batch's many slots (`CROSSSLOT`)
 * disables it too, and the batch is sent again call by call.
 */
export class ScriptBatch {
  readonly #client: Redis | Cluster
  readonly #script: RedisScript
  readonly #width: number
  #enabled: boolean
  /** Puts what the client holds on the socket now (the write coalescer's `release`). */
  readonly #release: () => void
  #queue: PendingCall[] = []

  constructor(client: Redis | Cluster, script: BatchableScript, enabled: boolean, release: () => void) {
    this.#client = client
    this.#script = new RedisScript(script.source)
    this.#width = script.width
    this.#enabled = enabled
    this.#release = release
  }

  /**
   * This call's reply values, as `decode` reads them; rejects with this call's own error, or the
   * batch's. `onSent` runs once the call has left for Redis.
   */
  run<T>(
    keys: readonly string[],
    args: readonly (string | number)[],
    decode: ReplyDecoder<T>,
    onSent?: () => void,
  ): Promise<T> {
    if (!this.#enabled) {
      const reply = this.#runAlone(keys, args, decode)
      onSent?.()
      return reply
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ keys, args, decode, onSent, resolve: resolve as (value: unknown) => void, reject })
      if (this.#queue.length === 1) process.nextTick(this.#flush)
    })
  }

  readonly #flush = () => {
    const queue = this.#queue
    this.#queue = []
    let batch: PendingCall[] = []
    let bytes = 0
    for (const call of queue) {
      const size = argBytes(call.args)
      if (batch.length > 0 && (batch.length === MAX_BATCH_CALLS || bytes + size > MAX_BATCH_BYTES)) {
        this.#send(batch)
        batch = []
        bytes = 0
      }
      batch.push(call)
      bytes += size
    }
    this.#send(batch)
    this.#release()
    for (const call of queue) call.onSent?.()
  }

  #send(calls: PendingCall[]): void {
    const keys: string[] = []
    const args: (string | number)[] = []
    for (const call of calls) {
      keys.push(...call.keys)
      args.push(...call.args)
    }
    let sent: Promise<unknown>
    try {
      sent = this.#script.run(this.#client, keys, args)
    } catch (error) {
      // A client that throws instead of rejecting: its calls still get an answer, not a hang.
      sent = Promise.reject(error)
    }
    sent.then(
      (reply) => {
        for (let i = 0; i < calls.length; i++) {
          const call = calls[i] as PendingCall
          try {
            call.resolve(callReply(reply, i * this.#width, call.decode))
          } catch (error) {
            call.reject(error)
          }
        }
      },
      (error: unknown) => {
        if (calls.length > 1 && isCrossSlot(error)) return this.#unbatch(calls)
        for (const call of calls) call.reject(error)
      },
    )
  }

  #runAlone<T>(
    keys: readonly string[],
    args: readonly (string | number)[],
    decode: ReplyDecoder<T>,
  ): Promise<T> {
    return this.#script.run(this.#client, keys, args).then((reply) => callReply(reply, 0, decode))
  }

  /**
   * The server refused keys of several slots in one script: a Redis in cluster mode reached through
   * a plain client (a one-shard managed "cluster"), or a proxy with Cluster's rule. Batching stops
   * for good on this client, and the batch's calls go one by one.
   */
  #unbatch(calls: PendingCall[]): void {
    this.#enabled = false
    for (const call of calls)
      this.#runAlone(call.keys, call.args, call.decode).then(call.resolve, call.reject)
  }
}

/** `true` for the "keys in request don't hash to the same slot" reply. */
export function isCrossSlot(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('CROSSSLOT')
}

/** About how many bytes `args` take on the wire (string lengths; a number counts as a few). */
function argBytes(args: readonly (string | number)[]): number {
  let bytes = 0
  for (const arg of args) bytes += typeof arg === 'string' ? arg.length : 8
  return bytes
}

/** The call's values from `at` on; throws the error the script put in the first if the call failed. */
function callReply<T>(reply: unknown, at: number, decode: ReplyDecoder<T>): T {
  const values = reply as unknown[]
  const first = values[at]
  if (first instanceof Error) throw first
  return decode(values, at)
}
