import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { assertCsrf } from './csrf.js'
import { commitBeforeEnd, type ResponseHooks } from './node-response.js'
import type { Session, SessionData } from './session.js'
import type { Sessions } from './sessions.js'
import { attachSession } from './sessions-engine.js'

/**
 * Fastify plugin: loads the session in `onRequest` (read it with `sessions.of(request)`) and
 * saves it in `onSend`, before the reply leaves. Registered without encapsulation, so its hooks
 * cover every route. A Redis outage answers 503 through Fastify's error handling.
 *
 * The Set-Cookie is added where the headers leave, in `reply.raw.writeHead` (as the node and
 * Express adapters do), so it also reaches a handler that writes to `reply.raw` itself or calls
 * `reply.hijack()`: such a response is saved before `reply.raw.end()` completes, and a login
 * after its headers already left is reported as `SessionHeadersSentError` (to `onError` and the
 * logger), never silently lost.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { fastifySession } from '@scale/sessions/fastify'
 *
 * const app = Fastify()
 * await app.register(fastifySession(sessions))
 * app.get('/me', async (request) => ({ user: sessions.of(request).userId ?? null }))
 * ```
 */
export function fastifySession<Data extends SessionData>(sessions: Sessions<Data>): FastifyPluginAsync {
  const committing = new WeakSet<object>()
  const responses = new WeakMap<object, ResponseHooks>()
  const plugin = async (fastify: FastifyInstance): Promise<void> => {
    fastify.addHook('onRequest', async (request, reply) => {
      const session = await sessions.load({
        cookie: request.headers.cookie,
        userAgent: request.headers['user-agent'],
      })
      attachSession(sessions, request, session)
      // Hooks `reply.raw`: the cookie joins the headers whenever they leave, and a hijacked
      // reply is saved before its `end` completes.
      responses.set(request, commitBeforeEnd(sessions, session, reply.raw))
    })
    fastify.addHook('onSend', async (request, _reply, payload) => {
      // An error reply (including one caused by a failed save) passes through onSend again:
      // save once only.
      if (committing.has(request)) return payload
      committing.add(request)
      let session: Session<Data>
      try {
        session = sessions.of(request)
      } catch {
        return payload // onRequest failed (Redis down): nothing to save
      }
      try {
        await sessions.commit(session)
      } catch (error) {
        responses.get(request)?.savedByAdapter(false)
        throw error
      }
      // The Set-Cookie is added by the `writeHead` hook, which Fastify calls next.
      responses.get(request)?.savedByAdapter(true)
      return payload
    })
  }
  // What fastify-plugin does: skip encapsulation so the hooks apply to the parent's routes.
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: '@scale/sessions',
  })
  return plugin
}

/**
 * CSRF protection (synchronizer token) for Fastify, as a `preHandler` hook: unsafe methods must
 * carry the token from `csrfToken(sessions.of(request))` in the `x-csrf-token` header or the
 * `_csrf` body field; otherwise the request fails with `SessionCsrfError` (403).
 *
 * @example
 * ```ts
 * app.addHook('preHandler', fastifyCsrf(sessions))
 * ```
 */
export function fastifyCsrf<Data extends SessionData>(
  sessions: Sessions<Data>,
): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const header = request.headers['x-csrf-token']
    const body = request.body as { _csrf?: unknown } | undefined
    const token =
      typeof header === 'string' ? header : typeof body?._csrf === 'string' ? body._csrf : undefined
    assertCsrf(sessions.of(request), request.method, token)
  }
}
