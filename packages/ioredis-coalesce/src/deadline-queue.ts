/** One command waiting for its reply: `expire` runs if it is still pending at `deadline`. */
export interface PendingDeadline {
  readonly deadline: number
  /** Set when the command settled: the queue skips it. */
  done: boolean
  readonly expire: () => void
}

/** Drop the consumed head of the array once it is this long and more than half of it. */
const COMPACT_AT = 1_024

/** Node's longest timer (a longer delay fires after 1 ms, with a warning): a later deadline re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * The deadlines of every command with one timeout, behind one timer. Entries are added in deadline
 * order (same timeout, later start), so only the head needs a timer; a per-command `setTimeout`
 * and `clearTimeout` was a tenth of the read-through cache's miss-path CPU. Replies mostly come
 * back in order (one connection answers in order), so settled entries leave from the head at once
 * and the queue stays as short as the commands in flight.
 *
 * The timer is unref'd unless the queue keeps the process alive (see `deadlineQueue`): a command
 * waiting for its reply keeps the process alive through its socket, not through its deadline.
 */
export class DeadlineQueue {
  readonly #timeoutMs: number
  #entries: PendingDeadline[] = []
  #head = 0
  /** Settled entries behind the head: one call that never settles (a hung loader) must not pin every later one. */
  #settledBehindHead = 0
  #timer: NodeJS.Timeout | undefined
  #firing = false
  readonly #keepAlive: boolean
  readonly #registry: Map<number, DeadlineQueue>

  constructor(timeoutMs: number, keepAlive: boolean, registry: Map<number, DeadlineQueue>) {
    this.#timeoutMs = timeoutMs
    this.#keepAlive = keepAlive
    this.#registry = registry
  }

  /** Entries the queue holds now: the pending ones and settled ones not yet dropped. */
  get held(): number {
    return this.#entries.length - this.#head
  }

  add(expire: () => void): PendingDeadline {
    const entry: PendingDeadline = { deadline: Date.now() + this.#timeoutMs, done: false, expire }
    this.#entries.push(entry)
    if (this.#timer === undefined) this.#arm(entry.deadline)
    return entry
  }

  /** The entry settled: drop it (and any settled ones behind it) if it is at the head. */
  settle(entry: PendingDeadline): void {
    // Already expired (its caller settles it again on the way out) or settled: nothing to count.
    if (entry.done) return
    entry.done = true
    // While the timer walks the array (an `expire` settling another call), only mark: the walk
    // and its clean-up afterwards drop what is settled.
    if (this.#firing) return
    if (this.#entries[this.#head] === entry) this.#dropSettledHead()
    else if (
      ++this.#settledBehindHead >= COMPACT_AT &&
      this.#settledBehindHead * 2 > this.#entries.length - this.#head
    )
      this.#dropSettled()
  }

  /** Keeps only the pending entries (in order): the queue stays about as long as the calls in flight. */
  #dropSettled(): void {
    this.#entries = this.#entries.slice(this.#head).filter((entry) => !entry.done)
    this.#head = 0
    this.#settledBehindHead = 0
  }

  #dropSettledHead(): void {
    const entries = this.#entries
    while (this.#head < entries.length && (entries[this.#head] as PendingDeadline).done) this.#head++
    if (this.#head === entries.length) {
      // Empty: stop the timer and leave the registry, so a process that uses many timeouts once
      // each (a per-request budget) keeps none of them; the next call makes a new queue. (At most
      // one timer per time the queue empties: under load it seldom does.)
      entries.length = 0
      this.#head = 0
      this.#settledBehindHead = 0
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer)
        this.#timer = undefined
      }
      if (this.#registry.get(this.#timeoutMs) === this) this.#registry.delete(this.#timeoutMs)
    } else if (this.#head >= COMPACT_AT && this.#head * 2 > entries.length) {
      this.#entries = entries.slice(this.#head)
      this.#head = 0
    }
  }

  #arm(at: number): void {
    this.#timer = setTimeout(this.#fire, Math.min(MAX_TIMER_MS, Math.max(1, at - Date.now())))
    if (!this.#keepAlive) this.#timer.unref()
  }

  readonly #fire = (): void => {
    this.#timer = undefined
    const now = Date.now()
    const entries = this.#entries
    this.#firing = true
    try {
      while (this.#head < entries.length) {
        const entry = entries[this.#head] as PendingDeadline
        if (!entry.done && entry.deadline > now) break
        this.#head++
        if (!entry.done) {
          entry.done = true
          entry.expire()
        }
      }
    } finally {
      this.#firing = false
      // Even if an `expire` threw, the deadlines behind it keep their timer.
      this.#dropSettledHead()
      const next = this.#entries[this.#head]
      if (next !== undefined && this.#timer === undefined) this.#arm(next.deadline)
    }
  }
}

const queues = new Map<number, DeadlineQueue>()
const keptAliveQueues = new Map<number, DeadlineQueue>()

/**
 * The queue of every call with this timeout (one per distinct timeout in use; an emptied queue
 * leaves the registry). Its timer is unref'd, as a command's socket keeps the process alive;
 * `keepAlive: true` gives a queue whose pending deadlines keep the process alive themselves
 * (nothing else may, e.g. a loader that never settles in a process with no socket open).
 */
export function deadlineQueue(timeoutMs: number, options: { keepAlive?: boolean } = {}): DeadlineQueue {
  const keepAlive = options.keepAlive === true
  const registry = keepAlive ? keptAliveQueues : queues
  let queue = registry.get(timeoutMs)
  if (queue === undefined) {
    queue = new DeadlineQueue(timeoutMs, keepAlive, registry)
    registry.set(timeoutMs, queue)
  }
  return queue
}
