import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { writeOriginResponse } from './node-origin.js'
import { createOrigin, type Origin, type OriginOptions } from './origin.js'

export type { OriginOptions } from './origin.js'

/**
 * Fastify plugin: serves the assets on `GET`/`HEAD` `<mountPath>/*` (or `/*`), streaming from
 * disk. A missing asset answers 404 through Fastify's not-found handling.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { fastifyOrigin } from '@scale/cdn-url/fastify'
 *
 * const app = Fastify()
 * await app.register(fastifyOrigin({ root: 'dist/assets', manifest, mountPath: '/assets' }))
 * ```
 */
export function fastifyOrigin(options: OriginOptions | Origin): FastifyPluginAsync {
  const origin = 'respond' in options ? options : createOrigin(options)
  const mountPath = 'respond' in options ? '' : (options.mountPath ?? '')
  const plugin = async (fastify: FastifyInstance): Promise<void> => {
    fastify.route({
      method: ['GET', 'HEAD'],
      url: `${mountPath}/*`,
      // Fastify would add its own HEAD route; ours answers HEAD itself (no body, same headers).
      exposeHeadRoute: false,
      handler: async (request, reply) => {
        const response = await origin.respond({
          method: request.method,
          url: request.raw.url ?? request.url,
          headers: request.headers,
        })
        if (response.passThrough) return reply.callNotFound()
        reply.hijack()
        await writeOriginResponse(response, reply.raw)
      },
    })
  }
  // What fastify-plugin does: skip encapsulation so the route sits where the app registered it.
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: '@scale/cdn-url',
  })
  return plugin
}
