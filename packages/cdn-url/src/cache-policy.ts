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
