// The key hash: FNV-1a (32 bit) over the key's UTF-8 bytes, then MurmurHash3's fmix32 finaliser so
// the low bits (the bucket) depend on every byte. Written out here (and in SQL, shard-sql.ts) rather
// than taken from a library: the bucket of a stored row must never change with a Node version, a
// platform or a dependency update. Test vectors in test/hash.test.ts pin it.

function fmix32(value: number): number {
  let h = value
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * The unsigned 32-bit hash of a canonical key. UTF-8 is encoded on the fly (no buffer per key);
 * a lone surrogate counts as U+FFFD, as TextEncoder would encode it.
 */
export function hashKey(canonical: string): number {
  let h = 0x811c9dc5
  const length = canonical.length
  for (let i = 0; i < length; i++) {
    let code = canonical.charCodeAt(i)
    if (code < 0x80) {
      h = Math.imul(h ^ code, 0x01000193)
      continue
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = i + 1 < length ? canonical.charCodeAt(i + 1) : 0
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00)
        i++
      } else {
        code = 0xfffd
      }
    }
    if (code < 0x800) {
      h = Math.imul(h ^ (0xc0 | (code >> 6)), 0x01000193)
    } else if (code < 0x10000) {
      h = Math.imul(h ^ (0xe0 | (code >> 12)), 0x01000193)
      h = Math.imul(h ^ (0x80 | ((code >> 6) & 0x3f)), 0x01000193)
    } else {
      h = Math.imul(h ^ (0xf0 | (code >> 18)), 0x01000193)
      h = Math.imul(h ^ (0x80 | ((code >> 12) & 0x3f)), 0x01000193)
      h = Math.imul(h ^ (0x80 | ((code >> 6) & 0x3f)), 0x01000193)
    }
    h = Math.imul(h ^ (0x80 | (code & 0x3f)), 0x01000193)
  }
  return fmix32(h >>> 0)
}
