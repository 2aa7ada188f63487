import { CdnOptionsError } from './errors.js'
import type { HealthCheckOptions } from './health-switch.js'
import type { ImageProvider } from './image-transform.js'
import type { AssetManifest } from './manifest.js'
import type { Logger, MetricsHook } from './observability.js'
import type { SigningKey } from './url-signing.js'

/** Options of {@link createCdn}. */
export interface CdnOptions {
  /**
   * Base URL of the CDN (`https://cdn.example.com` or with a path, `https://cdn.example.com/assets`).
   * A list opts in to host sharding: each path always goes to the same one of them.
   */
  baseUrl: string | readonly string[]
  /**
   * Base URL of the origin: where URLs point while the edge is down (see `health`), and with
   * `url(path, { origin: true })`. Required with `health`.
   */
  originUrl?: string
  /** The asset manifest (`readManifest(...)` or the object `buildManifest` returned). */
  manifest?: AssetManifest
  /**
   * What `url()` does with a path the manifest lacks: throw {@link AssetNotFoundError}, or build a
   * plain URL. Without a manifest every path passes through.
   * @default 'error'
   */
  onMissingAsset?: 'error' | 'passthrough'
  /** HMAC keys for signed URLs, newest first: the first signs, every one verifies. */
  signing?: {
    keys: readonly SigningKey[]
    /**
     * Lifetime of a signed URL when `url()` is not given one.
     * @default 3_600_000 (1 h)
     */
    defaultExpiresInMs?: number
    /**
     * How long past its expiry `verify()` (and so the origin) still accepts a URL: room for a
     * verifier whose clock runs ahead of the signer's. Give expiries slack rather than a large leeway.
     * @default 0
     */
    leewayMs?: number
  }
  /**
   * How `url(path, { image })` passes image parameters: imgix-style query (`?w=400&fm=webp`), or
   * Cloudflare's `/cdn-cgi/image/width=400,format=webp/` prefix.
   * @default 'imgix'
   */
  imageProvider?: ImageProvider
  /** Probe the edge and point URLs at `originUrl` while it fails (hysteresis). Starts a timer: `close()` stops it. */
  health?: HealthCheckOptions
  /** pino-compatible logger. Silent by default. */
  logger?: Logger
  /** Metrics hook: `cdn_urls_total`, `cdn_url_fallback_total`, `cdn_health_probes_total`, `cdn_fallback_switches_total`, `cdn_verify_total`. */
  metrics?: MetricsHook
}

const HUNDRED_YEARS_MS = 100 * 365.25 * 24 * 3600 * 1000

/** A base URL without its trailing slash; refuses anything but http(s) with no query or fragment. */
export function normalizeBase(base: string, option: string): string {
  let url: URL
  try {
    url = new URL(base)
  } catch {
    throw new CdnOptionsError(option, `"${base}" is not an absolute URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CdnOptionsError(option, 'must be http(s)')
  if (url.search || url.hash) throw new CdnOptionsError(option, 'must not have a query or fragment')
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
}

export function normalizeBases(bases: string | readonly string[], option: string): string[] {
  const list = typeof bases === 'string' ? [bases] : [...bases]
  if (list.length === 0) throw new CdnOptionsError(option, 'needs at least one base URL')
  return list.map((base) => normalizeBase(base, option))
}

export function validateCdnOptions(options: CdnOptions): void {
  if (options.health) {
    if (!options.originUrl)
      throw new CdnOptionsError('originUrl', 'is required with `health` (where URLs go when the edge fails)')
    if (!options.health.url && !options.health.check)
      throw new CdnOptionsError('health', 'needs `url` or `check`')
    for (const name of ['failuresToSwitch', 'successesToRecover'] as const) {
      const value = options.health[name]
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
        throw new CdnOptionsError(`health.${name}`, 'must be an integer ≥ 1')
      }
    }
  }
  if (options.onMissingAsset && !['error', 'passthrough'].includes(options.onMissingAsset)) {
    throw new CdnOptionsError('onMissingAsset', "must be 'error' or 'passthrough'")
  }
  if (options.imageProvider && !['imgix', 'cloudflare'].includes(options.imageProvider)) {
    throw new CdnOptionsError('imageProvider', "must be 'imgix' or 'cloudflare'")
  }
  const leeway = options.signing?.leewayMs
  if (leeway !== undefined && !(leeway >= 0 && leeway <= 86_400_000)) {
    throw new CdnOptionsError('signing.leewayMs', 'must be from 0 to 86_400_000 ms (a day)')
  }
  const lifetime = options.signing?.defaultExpiresInMs
  if (lifetime !== undefined && !(lifetime > 0 && lifetime <= HUNDRED_YEARS_MS)) {
    throw new CdnOptionsError(
      'signing.defaultExpiresInMs',
      'must be a positive number of ms, at most 100 years',
    )
  }
}
