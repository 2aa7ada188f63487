import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AppContext } from '../app.js'

/** Header carrying the read-your-writes position between a client's requests. */
export const CONSISTENCY_HEADER = 'x-consistency'

/**
 * Runs a handler in its own read-your-writes context (@scale/read-replica): the client's token from
 * an earlier write comes in, and after a write the new position goes back out, so the same user's
 * next read, on any web server, never sees data older than what it wrote.
 */
export async function consistent<T>(
  context: AppContext,
  request: FastifyRequest,
  reply: FastifyReply,
  handler: () => Promise<T>,
): Promise<T> {
  const token = request.headers[CONSISTENCY_HEADER]
  return context.db.router.run(typeof token === 'string' ? token : undefined, async () => {
    const result = await handler()
    const position = context.db.router.token()
    if (position) reply.header(CONSISTENCY_HEADER, position)
    return result
  })
}
