import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'

/**
 * Strong ETags from the content's SHA-256, computed once per (file, size, mtime) and remembered:
 * the same bytes give the same ETag on every origin server, which a CDN in front of several
 * needs (an mtime-based ETag differs per server and defeats revalidation).
 */
export class EtagCache {
  readonly #cache = new Map<string, Promise<string>>()
  readonly #max: number

  constructor(max = 10_000) {
    this.#max = max
  }

  get(file: string, size: number, mtimeMs: number): Promise<string> {
    const key = `${file}\0${size}\0${mtimeMs}`
    let etag = this.#cache.get(key)
    if (!etag) {
      etag = hashFile(file)
      etag.catch(() => this.#cache.delete(key))
      if (this.#cache.size >= this.#max) this.#cache.delete(this.#cache.keys().next().value as string)
      this.#cache.set(key, etag)
    }
    return etag
  }
}

function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(`"${hash.digest('base64url').slice(0, 27)}"`))
  })
}

/** `If-None-Match` against our ETag: weak comparison, as RFC 9110 §13.1.2 asks for GET/HEAD. */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false
  if (header.trim() === '*') return true
  const opaque = etag.replace(/^W\//, '')
  return header.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === opaque)
}
