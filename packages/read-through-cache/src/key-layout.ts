/** The Redis keys that belong to one cache key. */
export interface EntryKeys {
  /** The logical key the user passed. */
  key: string
  value: string
  lease: string
  /** What a lease holder that stored nothing tells its waiters: `<token>|<outcome>`. */
  outcome: string
}

/** The Redis keys that belong to one tag. */
export interface TagKeys {
  tag: string
  /** Set of the logical keys written with this tag. */
  members: string
  /** Counter bumped by every `deleteByTag`; a loader compares it before and after to catch a racing invalidation. */
  epoch: string
  /** When the epoch was last bumped (Redis server time, ms): checked by loads that tag late (`ctx.setTags`). */
  bumpedAt: string
  /**
   * Prefix of the sets that hold what one `deleteByTag` took (`<taken><takeId>`) until its keys are
   * deleted: a replay after a lost reply finds them there.
   */
  taken: string
}

/**
 * Every key of one entry shares a Redis Cluster hash tag (`{...}`), so the Lua scripts that read
 * and write the value and its lease together touch a single slot. A key containing `}` would end
 * the hash tag early (and a leading `}` would make it empty), so such keys are tagged by a hash.
 */
function hashTag(name: string): string {
  if (!name.includes('}')) return `{${name}}`
  let hash = 0x811c9dc5
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return `{#${hash.toString(16)}}${name}`
}

export class KeyLayout {
  readonly prefix: string
  readonly channel: string

  constructor(prefix: string) {
    this.prefix = prefix
    this.channel = `${prefix}__invalidate`
  }

  entry(key: string): EntryKeys {
    const base = `${this.prefix}${hashTag(key)}`
    return { key, value: `${base}:v`, lease: `${base}:l`, outcome: `${base}:o` }
  }

  tag(tag: string): TagKeys {
    const base = `${this.prefix}tag:${hashTag(tag)}`
    return { tag, members: `${base}:s`, epoch: `${base}:e`, bumpedAt: `${base}:t`, taken: `${base}:x:` }
  }
}
