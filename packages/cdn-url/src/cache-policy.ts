/** `Cache-Control` per class of asset (the `cacheControl` option of the origin handler). */
export interface CachePolicy {
  /**
   * Fingerprinted files (the name changes with the content), and versioned files requested with their current `?v=`.
   * @default 'public, max-age=31536000, immutable'
   */
  fingerprinted?: string
  /**
   * HTML: always revalidated, so a deploy shows at once.
   * @default 'no-cache'
   */
  html?: string
  /**
   * Everything else: cached briefly, served stale while the edge revalidates, and when the origin fails.
   * @default 'public, max-age=300, stale-while-revalidate=3600, stale-if-error=86400'
   */
  other?: string
}

export const DEFAULT_CACHE_POLICY: Required<CachePolicy> = {
  fingerprinted: 'public, max-age=31536000, immutable',
  html: 'no-cache',
  other: 'public, max-age=300, stale-while-revalidate=3600, stale-if-error=86400',
}

/** Our builder's and webpack's `name.<hex>.ext`. Other schemes are recognised through the manifest. */
const HEX_FINGERPRINT = /\.[0-9a-f]{8,64}\.[A-Za-z0-9]+$/

export type AssetClass = keyof CachePolicy

export function classify(
  path: string,
  contentType: string,
  fingerprintedFiles: ReadonlySet<string>,
): AssetClass {
  if (contentType.startsWith('text/html')) return 'html'
  if (fingerprintedFiles.has(path) || HEX_FINGERPRINT.test(path)) return 'fingerprinted'
  return 'other'
}

/**
 * How a response that needed a signature may be cached (the `signedCaching` option of the origin).
 * - `'private'`: `private, max-age=<seconds the signature has left>`. Only the browser that holds the
 *   URL may keep it, never past the expiry; no shared cache (CDN, proxy) stores it, so every request
 *   for it reaches the origin and is verified there.
 * - `'shared-until-expiry'`: `public, max-age=<seconds left>`, without stale-while-revalidate or
 *   stale-if-error (both would serve it past the expiry). Only when the edge's cache key holds the
 *   whole query string (the signature): an edge that ignores it would serve the file unsigned.
 */
export type SignedCaching = 'private' | 'shared-until-expiry'

/**
 * The `Cache-Control` of a signed response. A signed file is never `immutable` and never cached past
 * its signature: the origin verifies signatures, so what a shared cache keeps it serves unverified
 * (CloudFront and Fastly verify at the edge; an origin-verified URL has to bound the copy instead).
 * Rounded down, so a cache that counts from now expires it no later than the signature.
 */
export function signedCacheControl(mode: SignedCaching, expiresAt: Date, now = Date.now()): string {
  const secondsLeft = Math.max(0, Math.floor((expiresAt.getTime() - now) / 1000))
  return `${mode === 'private' ? 'private' : 'public'}, max-age=${secondsLeft}`
}
