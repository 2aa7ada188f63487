/** One entry of the in-process tier: the deserialized value, so a hit costs no parsing. */
export interface LocalEntry {
  value: unknown
  negative: boolean
  freshUntil: number
  staleUntil: number
  /** What the entry is charged against `maxBytes`: see `estimatedBytes` in entry-codec.ts. */
  size: number
}

export interface LocalTierLimits {
  maxEntries: number
  maxBytes: number
}

interface Node {
  key: string
  entry: LocalEntry
  /** Towards the least recently used end. */
  older: Node | undefined
  /** Towards the most recently used end. */
  newer: Node | undefined
}

/**
 * A bounded LRU: a `Map` for lookup plus a doubly linked recency list, so a hit, an insert and an
 * eviction are all O(1). (Re-inserting into a `Map` and evicting with `keys().next()` looks O(1)
 * but is not in V8: deleted slots stay in the table until a rehash, and every `next()` walks
 * over them.) Bounded both by entry count and by approximate bytes.
 */
export class LocalTier {
  readonly #nodes = new Map<string, Node>()
  readonly #limits: LocalTierLimits
  #oldest: Node | undefined
  #newest: Node | undefined
  #bytes = 0
  #evictions = 0

  constructor(limits: LocalTierLimits) {
    this.#limits = limits
  }

  get size(): number {
    return this.#nodes.size
  }

  get bytes(): number {
    return this.#bytes
  }

  get evictions(): number {
    return this.#evictions
  }

  /** Returns the entry (fresh or stale) and marks it most recently used; drops it once past staleUntil. */
  get(key: string, now: number): LocalEntry | undefined {
    const node = this.#nodes.get(key)
    if (node === undefined) return undefined
    if (node.entry.staleUntil <= now) {
      this.#remove(node)
      return undefined
    }
    if (node !== this.#newest) {
      this.#unlink(node)
      this.#append(node)
    }
    return node.entry
  }

  /** Reads without touching recency (for tests and introspection). */
  peek(key: string): LocalEntry | undefined {
    return this.#nodes.get(key)?.entry
  }

  set(key: string, entry: LocalEntry): void {
    this.delete(key)
    // An entry larger than the whole budget would evict everything and still not fit.
    if (entry.size > this.#limits.maxBytes) return
    const node: Node = { key, entry, older: undefined, newer: undefined }
    this.#nodes.set(key, node)
    this.#append(node)
    this.#bytes += entry.size
    while (this.#nodes.size > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes) {
      const oldest = this.#oldest
      if (oldest === undefined) break
      this.#remove(oldest)
      this.#evictions++
    }
  }

  /** Makes every entry stale by `until` at the latest (an outage began: bound how long each is trusted). */
  capFreshness(until: number): void {
    for (const node of this.#nodes.values()) {
      if (node.entry.freshUntil > until) node.entry.freshUntil = until
    }
  }

  delete(key: string): boolean {
    const node = this.#nodes.get(key)
    if (node === undefined) return false
    this.#remove(node)
    return true
  }

  clear(): void {
    this.#nodes.clear()
    this.#oldest = undefined
    this.#newest = undefined
    this.#bytes = 0
  }

  #remove(node: Node): void {
    this.#nodes.delete(node.key)
    this.#unlink(node)
    this.#bytes -= node.entry.size
  }

  #unlink(node: Node): void {
    if (node.older) node.older.newer = node.newer
    else this.#oldest = node.newer
    if (node.newer) node.newer.older = node.older
    else this.#newest = node.older
    node.older = undefined
    node.newer = undefined
  }

  #append(node: Node): void {
    node.older = this.#newest
    if (this.#newest) this.#newest.newer = node
    else this.#oldest = node
    this.#newest = node
  }
}
