// The key hash: FNV-1a (32 bit) over the key's UTF-8 bytes, then MurmurHash3's fmix32 finaliser so
// the low bits (the bucket) depend on every byte. Written out here (and in SQL, shard-sql.ts) rather
// than taken from a library: the bucket of a stored row must never change with a Node version, a
// platform or a dependency update. Test vectors in test/hash.test.ts pin it.

const encoder = new TextEncoder()

function fmix32(value: number): number {
  let h = value
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The unsigned 32-bit hash of a canonical key. */
export function hashKey(canonical: string): number {
  const bytes = encoder.encode(canonical)
  let h = 0x811c9dc5
  for (const byte of bytes) h = Math.imul(h ^ byte, 0x01000193)
  return fmix32(h >>> 0)
}
