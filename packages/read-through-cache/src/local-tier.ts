/** One entry of the in-process tier: the deserialized value, so a hit costs no parsing. */
export interface LocalEntry {
  value: unknown
  negative: boolean
  freshUntil: number
  staleUntil: number
  /** Approximate size: the length of the serialized payload (UTF-16 code units). */
  size: number
}

export interface LocalTierLimits {
  maxEntries: number
  maxBytes: number
}

/**
 * A bounded LRU over a `Map`: a `Map` iterates in insertion order, so re-inserting on every hit
 * keeps the least recently used entry first and eviction is `keys().next()` — O(1) and no linked
 * list to maintain. Bounded both by entry count and by approximate bytes.
 */
export class LocalTier {
  readonly #entries = new Map<string, LocalEntry>()
  readonly #limits: LocalTierLimits
  #bytes = 0
  #evictions = 0

  constructor(limits: LocalTierLimits) {
    this.#limits = limits
  }

  get size(): number {
    return this.#entries.size
  }

  get bytes(): number {
    return this.#bytes
  }

  get evictions(): number {
    return this.#evictions
  }

  /** Returns the entry (fresh or stale) and marks it most recently used; drops it once past staleUntil. */
  get(key: string, now: number): LocalEntry | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.staleUntil <= now) {
      this.delete(key)
      return undefined
    }
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    return entry
  }

  /** Reads without touching recency (for tests and introspection). */
  peek(key: string): LocalEntry | undefined {
    return this.#entries.get(key)
  }

  set(key: string, entry: LocalEntry): void {
    // An entry larger than the whole budget would evict everything and still not fit.
    if (entry.size > this.#limits.maxBytes) {
      this.delete(key)
      return
    }
    this.delete(key)
    this.#entries.set(key, entry)
    this.#bytes += entry.size
    while (this.#entries.size > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes) {
      const oldest = this.#entries.keys().next()
      if (oldest.done) break
      this.delete(oldest.value)
      this.#evictions++
    }
  }

  delete(key: string): boolean {
    const entry = this.#entries.get(key)
    if (entry === undefined) return false
    this.#entries.delete(key)
    this.#bytes -= entry.size
    return true
  }

  clear(): void {
    this.#entries.clear()
    this.#bytes = 0
  }
}
