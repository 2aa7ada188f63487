import { createReadStream } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { createOrigin, type Origin, type OriginOptions, type OriginResponse } from './origin.js'

/** Node `http` / Connect / Express handler. With `next`, a missing asset or another method falls through to it. */
export type OriginHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void

/** Writes an {@link OriginResponse} to a Node response, streaming file bodies. Never throws. */
export async function writeOriginResponse(response: OriginResponse, res: ServerResponse): Promise<void> {
  res.writeHead(response.status, response.headers)
  const body = response.body
  if (body === undefined) {
    res.end()
  } else if (typeof body === 'string') {
    res.end(body)
  } else {
    try {
      await pipeline(createReadStream(body.file, { start: body.start, end: body.end }), res)
    } catch {
      // The client went away, or the file vanished mid-stream: the status is sent, so cut the connection.
      res.destroy()
    }
  }
}

/**
 * The origin as a Node `http` handler (also Connect/Express middleware).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { createOriginHandler } from '@scale/cdn-url/origin'
 *
 * createServer(createOriginHandler({ root: 'dist/assets', manifest })).listen(8080)
 * ```
 */
export function createOriginHandler(options: OriginOptions | Origin): OriginHandler {
  const origin = 'respond' in options ? options : createOrigin(options)
  return (req, res, next) => {
    origin
      .respond({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers })
      .then((response) => {
        if (response.passThrough && next) return next()
        return writeOriginResponse(response, res)
      })
      .catch((error: unknown) => {
        if (next) next(error)
        else res.destroy()
      })
  }
}
