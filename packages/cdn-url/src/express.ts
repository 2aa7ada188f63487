import { createOriginHandler, type OriginHandler } from './node-origin.js'
import type { Origin, OriginOptions } from './origin.js'

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
  const handler = createOriginHandler(options)
  // Express strips the mount path from req.url; the origin wants the full target (the signature
  // covers it), which Express keeps in req.originalUrl.
  return (req, res, next) => {
    const original = (req as { originalUrl?: string }).originalUrl
    if (original !== undefined) req.url = original
    handler(req, res, next)
  }
}
