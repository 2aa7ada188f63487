import { stat } from 'node:fs/promises'
import { resolve, sep } from 'node:path'
import { parseRange } from './byte-range.js'
import {
  type CachePolicy,
  classify,
  DEFAULT_CACHE_POLICY,
  type SignedCaching,
  signedCacheControl,
} from './cache-policy.js'
import type { Cdn } from './cdn.js'
import { contentTypeOf } from './content-type.js'
import { CdnOptionsError } from './errors.js'
import { EtagCache, noneMatch } from './etag.js'
import type { AssetManifest } from './manifest.js'
import { type Logger, type MetricsHook, Observability, SOURCE } from './observability.js'
import {
  accepts,
  errorResponse,
  header,
  notFoundResponse,
  type OriginRequest,
  type OriginResponse,
} from './origin-response.js'
import { decodePath, parseQuery, splitTarget } from './path-encoding.js'

/** Options of {@link createOrigin}. */
export interface OriginOptions {
  /** The directory the assets are served from (the manifest builder's `outputDir`). */
  root: string
  /** Tells which files are fingerprinted (immutable) and which are versioned, and names surrogate keys. */
  manifest?: AssetManifest
  /** Verifies signed URLs (`createCdn({ signing })`); needed with `requireSignature`. */
  cdn?: Pick<Cdn, 'verify'>
  /**
   * Which requests must carry a valid signature (403 otherwise).
   * @default false
   */
  requireSignature?: boolean | ((path: string) => boolean)
  /**
   * `Cache-Control` of a response that needed a signature, bounded by the signature's expiry
   * whatever its class (never `immutable`): `'private'` keeps it out of shared caches, so the edge
   * asks the origin (which verifies) every time; `'shared-until-expiry'` lets the edge keep it until
   * the signature expires, and is safe only if the edge's cache key holds the whole query string.
   * @default 'private'
   */
  signedCaching?: SignedCaching
  /** `Cache-Control` per class; see {@link CachePolicy} for the defaults. */
  cacheControl?: CachePolicy
  /**
   * Surrogate keys of a response, sent as `Surrogate-Key` (space-separated: Varnish, Fastly) and
   * `Cache-Tag` (comma-separated: Cloudflare), for purging by key.
   * @default (logicalPath) => ['assets', logicalPath]
   */
  surrogateKeys?: (logicalPath: string) => readonly string[]
  /**
   * Serve `file.br` / `file.gz` when present and accepted.
   * @default true
   */
  precompressed?: boolean
  /**
   * A path prefix the app mounts the handler under (`/assets`): removed before looking up the file.
   * The signature still covers the full path.
   * @default ''
   */
  mountPath?: string
  /** pino-compatible logger. Silent by default. */
  logger?: Logger
  /** Metrics hook: `cdn_origin_responses_total{status,class}`. */
  metrics?: MetricsHook
}

export type { OriginRequest, OriginResponse } from './origin-response.js'

/** Serves assets for a CDN to cache: cache policy, strong ETags, ranges, precompression, signatures. */
export interface Origin {
  /** Decides the response to one request. Never rejects: every failure is a 4xx/5xx response. */
  respond(request: OriginRequest): Promise<OriginResponse>
}

const SURROGATE_KEY = /[^A-Za-z0-9_.:/-]/g

/**
 * One file, one URL: an empty segment (`//js/a.js`, `js//a.js`), a trailing slash (`a.js/`) or an
 * encoded slash (`js%2Fa.js`) would name the same file under another cache key; none is a file name.
 */
function namesFileUnderAlias(rawPath: string, decoded: string): boolean {
  const rawSegments = rawPath.split('/')
  return rawSegments.slice(1).includes('') || decoded.split('/').length !== rawSegments.length
}

async function fileSize(path: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    const stats = await stat(path)
    return stats.isFile() ? { size: stats.size, mtimeMs: stats.mtimeMs } : undefined
  } catch {
    return undefined
  }
}

class OriginImpl implements Origin {
  readonly #root: string
  readonly #options: OriginOptions
  readonly #policy: Required<CachePolicy>
  readonly #fingerprinted = new Set<string>()
  readonly #logicalOf = new Map<string, string>()
  readonly #versionOf = new Map<string, string>()
  readonly #etags = new EtagCache()
  readonly #observability: Observability

  constructor(options: OriginOptions) {
    if (!options.root) throw new CdnOptionsError('root', 'is required: the directory to serve')
    if (options.requireSignature && !options.cdn) {
      throw new CdnOptionsError('cdn', 'is required with requireSignature (it verifies the signatures)')
    }
    if (options.signedCaching && !['private', 'shared-until-expiry'].includes(options.signedCaching)) {
      throw new CdnOptionsError('signedCaching', "must be 'private' or 'shared-until-expiry'")
    }
    if (options.mountPath && !/^\/[^?#]*[^/]$/.test(options.mountPath)) {
      throw new CdnOptionsError('mountPath', 'must start with "/" and not end with one')
    }
    this.#root = resolve(options.root)
    this.#options = options
    this.#policy = { ...DEFAULT_CACHE_POLICY, ...options.cacheControl }
    this.#observability = new Observability(options.logger, options.metrics, SOURCE)
    for (const [logical, entry] of Object.entries(options.manifest?.assets ?? {})) {
      const file = `/${entry.file}`
      this.#logicalOf.set(file, logical)
      if (entry.versioned) this.#versionOf.set(file, entry.hash)
      else this.#fingerprinted.add(file)
    }
  }

  async respond(request: OriginRequest): Promise<OriginResponse> {
    let response: OriginResponse
    let assetClass = 'none'
    try {
      const result = await this.#respond(request)
      response = result.response
      assetClass = result.assetClass
    } catch (error) {
      response = errorResponse(error, this.#observability.logger)
    }
    this.#observability.increment('cdn_origin_responses_total', {
      status: String(response.status),
      class: assetClass,
    })
    return response
  }

  async #respond(request: OriginRequest): Promise<{ response: OriginResponse; assetClass: string }> {
    const none = 'none'
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return {
        response: {
          status: 405,
          headers: { allow: 'GET, HEAD', 'cache-control': 'no-store' },
          passThrough: true,
        },
        assetClass: none,
      }
    }
    const { rawPath, rawQuery } = splitTarget(request.url)
    // Refuses `..`, `.`, backslashes and NUL in any encoding with a 400 (PathTraversalError).
    const decoded = decodePath(rawPath)
    const mount = this.#options.mountPath ?? ''
    if (namesFileUnderAlias(rawPath, decoded)) return { response: notFoundResponse(), assetClass: none }
    if (mount && decoded !== mount && !decoded.startsWith(`${mount}/`)) {
      return { response: notFoundResponse(), assetClass: none }
    }
    const path = decoded.slice(mount.length) || '/'
    const required = this.#options.requireSignature
    const verified =
      required === true || (typeof required === 'function' && required(path))
        ? this.#options.cdn?.verify(request.url) // throws a 403 error
        : undefined

    const file = resolve(this.#root, `.${path}`)
    // decodePath already refused traversal; this is the second lock on the same door.
    if (!file.startsWith(this.#root + sep)) return { response: notFoundResponse(), assetClass: none }
    const found = await fileSize(file)
    if (!found) return { response: notFoundResponse(), assetClass: none }

    const contentType = contentTypeOf(path)
    const version = parseQuery(rawQuery).find(([key]) => key === 'v')?.[1]
    let assetClass = classify(path, contentType, this.#fingerprinted)
    if (assetClass === 'other' && version !== undefined && this.#versionOf.get(path) === version) {
      assetClass = 'fingerprinted' // the URL names this exact content
    }
    const logical = this.#logicalOf.get(path) ?? path.slice(1)
    const keys = (this.#options.surrogateKeys ?? ((name: string) => ['assets', name]))(logical).map((key) =>
      key.replace(SURROGATE_KEY, '_'),
    )

    // Precompressed variant: only for whole-file responses (a range of a .br is not a range of the file).
    const acceptEncoding = header(request, 'accept-encoding')
    let served = { file, ...found }
    let encoding: 'br' | 'gzip' | undefined
    let hasVariants = false
    if (this.#options.precompressed !== false) {
      for (const [coding, suffix] of [
        ['br', '.br'],
        ['gzip', '.gz'],
      ] as const) {
        const variant = await fileSize(file + suffix)
        if (!variant) continue
        hasVariants = true
        if (!encoding && !header(request, 'range') && accepts(acceptEncoding, coding)) {
          served = { file: file + suffix, ...variant }
          encoding = coding
        }
      }
    }

    const etag = await this.#etags.get(served.file, served.size, served.mtimeMs)
    const headers: Record<string, string> = {
      'content-type': contentType,
      'cache-control': this.#policy[assetClass],
      etag,
      'last-modified': new Date(found.mtimeMs).toUTCString(),
      'accept-ranges': 'bytes',
      'x-content-type-options': 'nosniff',
    }
    if (keys.length > 0) {
      headers['surrogate-key'] = keys.join(' ')
      headers['cache-tag'] = keys.join(',')
    }
    if (verified) {
      headers['cache-control'] = signedCacheControl(
        this.#options.signedCaching ?? 'private',
        verified.expiresAt,
      )
    }
    if (hasVariants) headers.vary = 'Accept-Encoding'
    if (encoding) headers['content-encoding'] = encoding

    if (noneMatch(header(request, 'if-none-match'), etag)) {
      return { response: { status: 304, headers }, assetClass }
    }

    let range = parseRange(header(request, 'range'), served.size)
    const ifRange = header(request, 'if-range')
    if (range !== undefined && ifRange !== undefined && ifRange !== etag) range = undefined // changed: send it all
    if (range === 'unsatisfiable') {
      return {
        response: {
          status: 416,
          headers: {
            'content-range': `bytes */${served.size}`,
            'cache-control': 'no-store',
            'content-length': '0',
          },
        },
        assetClass,
      }
    }
    const start = range?.start ?? 0
    const end = range?.end ?? served.size - 1
    headers['content-length'] = String(Math.max(0, end - start + 1))
    if (range) headers['content-range'] = `bytes ${start}-${end}/${served.size}`
    const body =
      request.method === 'HEAD' || served.size === 0 ? undefined : { file: served.file, start, end }
    return { response: { status: range ? 206 : 200, headers, ...(body ? { body } : {}) }, assetClass }
  }
}

/**
 * The origin's asset server, framework-free. Use it through `createOriginHandler` (Node http,
 * Express) or the Fastify and Hono adapters.
 */
export function createOrigin(options: OriginOptions): Origin {
  return new OriginImpl(options)
}
