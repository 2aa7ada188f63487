import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import type { MiddlewareHandler } from 'hono'
import { createOrigin, type Origin, type OriginOptions, type OriginResponse } from './origin.js'

export type { OriginOptions } from './origin.js'

/** An {@link OriginResponse} as a Fetch `Response` (file bodies streamed from disk). */
export function toFetchResponse(response: OriginResponse): Response {
  const body = response.body
  const stream =
    body === undefined
      ? null
      : typeof body === 'string'
        ? body
        : (Readable.toWeb(
            createReadStream(body.file, { start: body.start, end: body.end }),
          ) as ReadableStream)
  return new Response(stream, { status: response.status, headers: response.headers })
}

/**
 * Hono middleware (Node runtime: it reads files with `node:fs`): answers asset requests, and
 * calls `next()` for a missing asset or another method.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { honoOrigin } from '@scale/cdn-url/hono'
 *
 * const app = new Hono()
 * app.use('/assets/*', honoOrigin({ root: 'dist/assets', manifest, mountPath: '/assets' }))
 * ```
 */
export function honoOrigin(options: OriginOptions | Origin): MiddlewareHandler {
  const origin = 'respond' in options ? options : createOrigin(options)
  return async (c, next) => {
    // The raw target as sent. On Node (@hono/node-server) that is the incoming request's url;
    // elsewhere the WHATWG-parsed URL, which has already resolved any `..` segments.
    const incoming = (c.env as { incoming?: { url?: string } } | undefined)?.incoming?.url
    const parsed = new URL(c.req.url)
    const target = incoming ?? `${parsed.pathname}${parsed.search}`
    const headers: Record<string, string> = {}
    c.req.raw.headers.forEach((value, name) => {
      headers[name] = value
    })
    const response = await origin.respond({ method: c.req.method, url: target, headers })
    if (response.passThrough) return next()
    return toFetchResponse(response)
  }
}
