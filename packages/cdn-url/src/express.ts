import type { IncomingMessage } from 'node:http'
import { type OriginHandler, writeOriginResponse } from './node-origin.js'
import { createOrigin, type Origin, type OriginOptions } from './origin.js'

export type { OriginOptions } from './origin.js'

/**
 * Express (4 and 5) middleware serving the assets; a missing asset falls through to the next
 * route, a bad path (400) or signature (403) is answered here.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { expressOrigin } from '@scale/cdn-url/express'
 *
 * const app = express()
 * app.use('/assets', expressOrigin({ root: 'dist/assets', manifest, mountPath: '/assets' }))
 * ```
 */
export function expressOrigin(options: OriginOptions | Origin): OriginHandler {
  const origin = 'respond' in options ? options : createOrigin(options)
  return (req, res, next) => {
    // Express strips the mount path from req.url; the origin wants the full target (the signature
    // covers it), which Express keeps in req.originalUrl. req.url itself is left alone: the router
    // restores it when the request moves on.
    const target = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/'
    origin
      .respond({ method: req.method ?? 'GET', url: target, headers: req.headers })
      .then((response) => {
        if (response.passThrough && next) return next()
        return writeOriginResponse(response, res)
      })
      .catch((error: unknown) => (next ? next(error) : res.destroy()))
  }
}
