import { CdnUrlError } from './errors.js'
import type { Logger } from './observability.js'

/** What the origin answers; the adapters write it to Node, Express, Fastify or a Fetch `Response`. */
export interface OriginResponse {
  status: number
  headers: Record<string, string>
  /** A file slice to stream (inclusive `end`), a short text, or nothing (HEAD, 304). */
  body?: { file: string; start: number; end: number } | string
  /** No such asset (or not GET/HEAD): an adapter with a `next` lets the app answer instead. */
  passThrough?: boolean
}

/** A request as the origin needs it: the raw target (`req.url`) and the headers it reads. */
export interface OriginRequest {
  method: string
  url: string
  headers: { [name: string]: string | string[] | undefined }
}

export function header(request: OriginRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

/** Whether `Accept-Encoding` accepts `coding` (listed, and not with `q=0`). */
export function accepts(acceptEncoding: string | undefined, coding: string): boolean {
  if (!acceptEncoding) return false
  return acceptEncoding.split(',').some((part) => {
    const [name = '', ...params] = part.trim().split(';')
    const q = params.map((p) => /^\s*q=([\d.]+)/.exec(p)?.[1]).find(Boolean)
    return name.trim().toLowerCase() === coding && (q === undefined || Number(q) > 0)
  })
}

function jsonResponse(status: number, cacheControl: string, code: string): OriginResponse {
  const body = JSON.stringify({ error: { code } })
  return {
    status,
    headers: {
      'content-type': 'application/json',
      'cache-control': cacheControl,
      'content-length': String(Buffer.byteLength(body)),
    },
    body,
  }
}

/** A failed request: the error's own 4xx (or 500 for anything unexpected, logged), never cached. */
export function errorResponse(error: unknown, logger: Logger): OriginResponse {
  const known = error instanceof CdnUrlError
  const status = known ? error.statusCode : 500
  if (!known || status >= 500) logger.error({ err: error }, '[@scale/cdn-url] origin failed')
  return jsonResponse(status, 'no-store', known ? error.code : 'E_CDN_ORIGIN_FAILED')
}

/**
 * No such asset, wherever the request missed (outside `mountPath`, an alias path, no file).
 * A short negative TTL: a CDN does not hammer the origin for a missing file, nor keep the 404 for long.
 */
export function notFoundResponse(): OriginResponse {
  return { ...jsonResponse(404, 'public, max-age=10', 'E_CDN_ASSET_NOT_FOUND'), passThrough: true }
}
