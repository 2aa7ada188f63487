import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AppContext } from '../app.js'
import type { VersionedUser } from '../user-store.js'
import { HttpError, idParam, parseInput, profileInput, profilePatchInput } from '../validation.js'
import { consistent } from './consistency.js'

/** Header with the row version of the user in the body (the load side counts stale reads with it). */
export const VERSION_HEADER = 'x-user-version'

function userId(request: FastifyRequest): number {
  return parseInput(idParam, (request.params as { id?: unknown }).id, 'user id')
}

function send(reply: FastifyReply, found: VersionedUser | undefined, id: number) {
  if (!found) throw new HttpError(404, 'E_USER_NOT_FOUND', `user ${id} does not exist`)
  return reply.header(VERSION_HEADER, String(found.version)).send(found.user)
}

/** When sessions are on, only the logged-in owner may change a profile. */
function authorize(context: AppContext, request: FastifyRequest, id: number): void {
  if (!context.sessions) return
  const owner = context.sessions.of(request).userId
  if (owner === undefined) throw new HttpError(401, 'E_LOGIN_REQUIRED', 'log in to change a profile')
  if (owner !== String(id)) throw new HttpError(403, 'E_FORBIDDEN', 'you can only change your own profile')
}

export function registerUserRoutes(fastify: FastifyInstance, context: AppContext): void {
  fastify.get('/users/:id', async (request, reply) => {
    const id = userId(request)
    const found = await consistent(context, request, reply, () => context.users.get(id))
    return send(reply, found, id)
  })

  fastify.put('/users/:id', async (request, reply) => {
    const id = userId(request)
    const profile = parseInput(profileInput, request.body, 'profile')
    authorize(context, request, id)
    const updated = await consistent(context, request, reply, () => context.users.update(id, profile))
    return send(reply, updated, id)
  })

  fastify.patch('/users/:id', async (request, reply) => {
    const id = userId(request)
    const patch = parseInput(profilePatchInput, request.body, 'profile change')
    authorize(context, request, id)
    const updated = await consistent(context, request, reply, () => context.users.update(id, patch))
    return send(reply, updated, id)
  })

  fastify.get('/users/:id/photos', async (request, reply) => {
    const id = userId(request)
    const photos = await consistent(context, request, reply, () =>
      context.db
        .selectFrom('photos')
        .select(['id', 'caption'])
        .where('user_id', '=', id)
        .orderBy('id')
        .limit(50)
        .execute(),
    )
    return photos.map((photo) => ({ ...photo, url: context.assetUrl(`/photos/${photo.id}.svg`) }))
  })
}
