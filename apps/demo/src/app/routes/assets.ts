import type { FastifyInstance } from 'fastify'
import type { AppContext } from '../app.js'
import { APP_CSS, renderPhotoSvg } from '../assets.js'
import { HttpError, idParam, parseInput } from '../validation.js'

// Asset URLs carry their version (a photo's ID never changes content; the CSS has ?v=<hash>), so
// an edge or browser may keep them a year. Surrogate-Key lets the edge purge one photo or all.
const IMMUTABLE = 'public, max-age=31536000, immutable'

export function registerAssetRoutes(fastify: FastifyInstance, context: AppContext): void {
  fastify.get('/assets/app.css', async (_request, reply) =>
    reply.type('text/css').header('cache-control', IMMUTABLE).header('surrogate-key', 'css').send(APP_CSS),
  )

  fastify.get('/photos/:file', async (request, reply) => {
    const file = String((request.params as { file?: unknown }).file ?? '')
    if (!file.endsWith('.svg')) throw new HttpError(404, 'E_NOT_FOUND', 'photos are served as <id>.svg')
    const id = parseInput(idParam, file.slice(0, -4), 'photo id')
    context.counters.photoLoads++
    const photo = await context.db
      .selectFrom('photos')
      .select(['id', 'hue', 'caption', 'user_id'])
      .where('id', '=', id)
      .executeTakeFirst()
    if (!photo) throw new HttpError(404, 'E_PHOTO_NOT_FOUND', `photo ${id} does not exist`)
    return reply
      .type('image/svg+xml')
      .header('cache-control', IMMUTABLE)
      .header('surrogate-key', `photo-${photo.id} user-${photo.user_id} photos`)
      .send(renderPhotoSvg(photo))
  })
}
