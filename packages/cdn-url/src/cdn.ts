import { type CdnOptions, normalizeBase, normalizeBases, validateCdnOptions } from './cdn-options.js'
import { AssetNotFoundError, CdnClosedError, CdnOptionsError, InvalidPathError } from './errors.js'
import { HealthSwitch, type ServingFrom } from './health-switch.js'
import { cloudflarePrefix, type ImageTransform, imgixQuery } from './image-transform.js'
import type { AssetManifest } from './manifest.js'
import { Observability, SOURCE } from './observability.js'
import { encodePath, formatQuery, type QueryPair } from './path-encoding.js'
import { expiryOf, UrlSigner, type VerifiedUrl } from './url-signing.js'

/** Options of one `cdn.url()` call. */
export interface UrlOptions {
  /**
   * Extra query parameters, as a plain object (`{ w: 400, dl: true }`; one value per name), encoded
   * canonically and covered by the signature. Anything else throws {@link CdnOptionsError}.
   */
  query?: Record<string, string | number | boolean>
  /** Adds `?v=<version>`; versioned manifest entries get their hash without asking. */
  version?: string
  /** Image parameters, in the form of the `imageProvider` option. */
  image?: ImageTransform
  /** Sign the URL: `true` for the default lifetime, or when it expires. */
  sign?: boolean | { expiresInMs?: number; expiresAt?: Date }
  /** Point at the origin whatever the edge's health. */
  origin?: boolean
}

/** Fingerprinted, versioned, sharded and signed asset URLs, with fallback to the origin. */
export interface Cdn {
  /**
   * The URL of an asset: its fingerprinted name from the manifest on the CDN host (or the origin
   * while the edge is down), with `?v=`, image parameters and a signature as asked.
   * The path is a decoded path: `#`, `?`, `%` and spaces are part of the file name.
   */
  url(path: string, options?: UrlOptions): string
  /**
   * Verifies a signed request target (`req.url`) or URL; throws a typed 4xx error when it does not
   * verify. `now` (ms since the epoch) replaces the clock; `signing.leewayMs` is allowed past expiry.
   */
  verify(target: string, options?: { now?: number }): VerifiedUrl
  /** Replaces the CDN base URL(s) at run time (a new CDN host, a sharding change). */
  setBaseUrl(baseUrl: string | readonly string[]): void
  /** The CDN base URLs in use. */
  readonly baseUrls: readonly string[]
  /** `'edge'`, or `'origin'` while the health check has switched URLs to the origin. */
  readonly servingFrom: ServingFrom
  /** Runs one health probe now (needs the `health` option); resolves where URLs point afterwards. */
  checkHealth(): Promise<ServingFrom>
  /** Stops the health check. Idempotent; afterwards every method throws {@link CdnClosedError}. */
  close(): Promise<void>
}

const URL_CACHE_SIZE = 10_000

/** FNV-1a: a stable, fast hash so that a path always lands on the same shard, in every process. */
function shardIndex(path: string, shards: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < path.length; i++) {
    hash ^= path.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % shards
}

/** `options.query`'s pairs; anything but a plain object of scalars would be stringified into nonsense (`0=role%2Cviewer`). */
function queryEntries(query: UrlOptions['query']): [string, string | number | boolean][] {
  if (query === undefined) return []
  const prototype = typeof query === 'object' && query !== null ? Object.getPrototypeOf(query) : undefined
  if (prototype !== Object.prototype && prototype !== null) {
    throw new CdnOptionsError('query', 'must be a plain object of parameter names to values ({ w: 400 })')
  }
  const entries = Object.entries(query)
  for (const [key, value] of entries) {
    if (!['string', 'number', 'boolean'].includes(typeof value))
      throw new CdnOptionsError('query', `parameter "${key}" must be a string, number or boolean`)
  }
  return entries
}

/** A base URL split once into what url() needs: `https://cdn.example.com` and the decoded `/assets`. */
interface Base {
  href: string
  origin: string
  path: string
}

function parseBase(href: string): Base {
  const url = new URL(href)
  return { href, origin: url.origin, path: decodeURIComponent(url.pathname).replace(/\/$/, '') }
}

class CdnImpl implements Cdn {
  #bases: Base[]
  readonly #origin: Base | undefined
  readonly #manifest: AssetManifest | undefined
  readonly #onMissing: 'error' | 'passthrough'
  readonly #signer: UrlSigner | undefined
  readonly #defaultExpiresInMs: number
  readonly #leewayMs: number
  readonly #imageProvider: 'imgix' | 'cloudflare'
  readonly #health: HealthSwitch | undefined
  readonly #observability: Observability
  #closed = false
  // Built URLs of plain url(path) calls, for the edge and for the origin; cleared on setBaseUrl.
  readonly #edgeCache = new Map<string, string>()
  readonly #originCache = new Map<string, string>()

  constructor(options: CdnOptions) {
    validateCdnOptions(options)
    this.#bases = normalizeBases(options.baseUrl, 'baseUrl').map(parseBase)
    this.#origin =
      options.originUrl === undefined ? undefined : parseBase(normalizeBase(options.originUrl, 'originUrl'))
    this.#manifest = options.manifest
    this.#onMissing = options.onMissingAsset ?? 'error'
    this.#signer = options.signing ? new UrlSigner(options.signing.keys) : undefined
    this.#defaultExpiresInMs = options.signing?.defaultExpiresInMs ?? 3_600_000
    this.#leewayMs = options.signing?.leewayMs ?? 0
    this.#imageProvider = options.imageProvider ?? 'imgix'
    this.#observability = new Observability(options.logger, options.metrics, SOURCE)
    this.#health = options.health ? new HealthSwitch(options.health, this.#observability) : undefined
  }

  get baseUrls(): readonly string[] {
    return this.#bases.map((base) => base.href)
  }

  get servingFrom(): ServingFrom {
    return this.#health?.state ?? 'edge'
  }

  setBaseUrl(baseUrl: string | readonly string[]): void {
    this.#assertOpen('setBaseUrl')
    this.#bases = normalizeBases(baseUrl, 'baseUrl').map(parseBase)
    this.#edgeCache.clear()
  }

  url(path: string, options?: UrlOptions): string {
    this.#assertOpen('url')
    if (typeof path !== 'string' || path === '') {
      throw new InvalidPathError(String(path), 'must be a non-empty string')
    }
    if (options !== undefined) return this.#build(path, options)
    // A plain url(path) is the hot call of every page render: remember it per base and health state.
    const toOrigin = this.servingFrom === 'origin'
    const cache = toOrigin ? this.#originCache : this.#edgeCache
    let url = cache.get(path)
    if (url === undefined) {
      url = this.#build(path, {})
      if (cache.size >= URL_CACHE_SIZE) cache.clear()
      cache.set(path, url)
    } else {
      this.#observability.increment('cdn_urls_total')
      if (toOrigin) this.#observability.increment('cdn_url_fallback_total')
    }
    return url
  }

  #build(path: string, options: UrlOptions): string {
    const logical = path.replace(/^\/+/, '')
    if (logical.split('/').includes('')) {
      // The origin serves a file under one URL only, and no file name is empty.
      throw new InvalidPathError(path, 'has an empty segment ("//" or a trailing "/")')
    }
    const entry = this.#manifest?.assets[logical]
    if (this.#manifest && !entry && this.#onMissing === 'error') throw new AssetNotFoundError(logical)

    const query: QueryPair[] = []
    for (const [key, value] of queryEntries(options.query)) query.push([key, String(value)])
    if (options.image && this.#imageProvider === 'imgix') query.push(...imgixQuery(options.image))
    const version = options.version ?? (entry?.versioned ? entry.hash : undefined)
    if (version !== undefined) query.push(['v', version])

    const toOrigin = options.origin === true || this.servingFrom === 'origin'
    if (toOrigin && !options.origin) this.#observability.increment('cdn_url_fallback_total')
    const base = toOrigin
      ? this.#originBase()
      : (this.#bases[shardIndex(logical, this.#bases.length)] as Base)
    const imagePrefix =
      options.image && this.#imageProvider === 'cloudflare' ? cloudflarePrefix(options.image) : ''
    // The decoded path as the server will see it: base path, image prefix, file.
    const decodedPath = `${base.path}${imagePrefix}/${entry?.file ?? logical}`

    if (options.sign) {
      if (!this.#signer) throw new CdnOptionsError('signing', 'is required to sign URLs')
      const expiresAt = expiryOf(options.sign === true ? {} : options.sign, this.#defaultExpiresInMs)
      query.push(...this.#signer.sign(decodedPath, query, expiresAt))
    }
    this.#observability.increment('cdn_urls_total')
    // The image prefix is plain ASCII (`width=400,format=auto`) and goes in unencoded, as
    // Cloudflare expects; it decodes to itself, so the signature covers it all the same.
    const rawPath = `${encodePath(base.path)}${imagePrefix}${encodePath(`/${entry?.file ?? logical}`)}`
    return `${base.origin}${rawPath}${query.length > 0 ? `?${formatQuery(query)}` : ''}`
  }

  verify(target: string, options: { now?: number } = {}): VerifiedUrl {
    this.#assertOpen('verify')
    if (typeof options !== 'object' || options === null) {
      throw new CdnOptionsError('verify', 'takes its options as an object: verify(target, { now })')
    }
    if (!this.#signer) throw new CdnOptionsError('signing', 'is required to verify URLs')
    try {
      const verified = this.#signer.verify(target, (options.now ?? Date.now()) - this.#leewayMs)
      this.#observability.increment('cdn_verify_total', { result: 'ok' })
      return verified
    } catch (error) {
      this.#observability.increment('cdn_verify_total', {
        result: (error as { code?: string }).code ?? 'error',
      })
      throw error
    }
  }

  checkHealth(): Promise<ServingFrom> {
    this.#assertOpen('checkHealth')
    if (!this.#health) return Promise.reject(new CdnOptionsError('health', 'is required for checkHealth()'))
    return this.#health.check()
  }

  #originBase(): Base {
    if (!this.#origin) throw new CdnOptionsError('originUrl', 'is required to point URLs at the origin')
    return this.#origin
  }

  #assertOpen(method: string): void {
    if (this.#closed) throw new CdnClosedError(method)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#health?.close()
  }
}

/**
 * Builds asset URLs for a CDN.
 *
 * @example
 * ```ts
 * import { createCdn, readManifest } from '@scale/cdn-url'
 *
 * const cdn = createCdn({
 *   baseUrl: 'https://cdn.example.com',
 *   manifest: await readManifest('dist/assets/manifest.json'),
 * })
 * cdn.url('js/app.js') // https://cdn.example.com/js/app.3f9a1c2e.js
 * ```
 */
export function createCdn(options: CdnOptions): Cdn {
  return new CdnImpl(options)
}
