import { AsyncLocalStorage } from 'node:async_hooks'
import { type Lsn, maxLsn } from './lsn.js'

/**
 * What one request (or job, or message) has seen: the highest WAL position it wrote (`lsn`) and
 * the one it was handed in a token (`tokenLsn`). `invalid` marks a context whose incoming token
 * was rejected: its reads go to the primary until the context writes again and gets a fresh,
 * trustworthy position.
 */
export interface ConsistencyState {
  lsn: Lsn | undefined
  tokenLsn: Lsn | undefined
  invalid: boolean
}

/** The requirement a read must meet: nothing, a WAL position, or "primary only". */
export type ReadRequirement = { kind: 'none' } | { kind: 'lsn'; lsn: Lsn } | { kind: 'invalid' }

const NONE: ReadRequirement = { kind: 'none' }

/**
 * Keeps the consistency state per async context. Outside any context, positions fall back to a
 * process-wide high-water mark (when enabled), which is stricter than needed but never stale.
 */
export class ConsistencyContext {
  readonly #storage = new AsyncLocalStorage<ConsistencyState>()
  readonly #processWide: boolean
  #processLsn: Lsn | undefined

  constructor(processWide: boolean) {
    this.#processWide = processWide
  }

  run<T>(state: ConsistencyState, fn: () => T): T {
    return this.#storage.run(state, fn)
  }

  current(): ConsistencyState | undefined {
    return this.#storage.getStore()
  }

  /** Records a committed write's position in the current context (and the process mark). */
  recordWrite(lsn: Lsn): void {
    this.#processLsn = maxLsn(this.#processLsn, lsn)
    const state = this.#storage.getStore()
    if (state) {
      state.lsn = maxLsn(state.lsn, lsn)
      state.invalid = false
      // `lsn` was read on the primary after this context started, so every real token the context
      // was handed is at or below it. A token above it was forged (unsigned tokens are only
      // format-checked) or belongs to WAL the primary no longer has: drop it, or every later
      // read of the context (and of whoever gets its token) would wait and go to the primary.
      if (state.tokenLsn !== undefined && state.tokenLsn > lsn) state.tokenLsn = undefined
    }
  }

  /**
   * A write committed (or may have) but its position could not be read: the context's reads go
   * to the primary until its next write brings a known position.
   */
  recordUnknownWrite(): void {
    const state = this.#storage.getStore()
    if (state) state.invalid = true
  }

  requirement(): ReadRequirement {
    const state = this.#storage.getStore()
    if (state) {
      if (state.invalid) return { kind: 'invalid' }
      const lsn = maxLsn(state.lsn, state.tokenLsn)
      return lsn === undefined ? NONE : { kind: 'lsn', lsn }
    }
    if (this.#processWide && this.#processLsn !== undefined) return { kind: 'lsn', lsn: this.#processLsn }
    return NONE
  }
}
