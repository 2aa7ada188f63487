import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { AppContext } from '../app.js'
import { photoJob, photoOutbox } from '../photo-job.js'
import { HttpError, idParam, parseInput } from '../validation.js'

const uploadInput = z.strictObject({
  userId: z.number().int().positive(),
  caption: z.string().trim().min(1).max(200),
  hue: z.number().int().min(0).max(359),
})

const job = photoJob()
const IMMUTABLE = 'public, max-age=31536000, immutable'

/** Stage 9: an upload writes the photo row and its processing job in one transaction. */
export function registerUploadRoutes(fastify: FastifyInstance, context: AppContext): void {
  fastify.post('/photos', async (request, reply) => {
    const upload = parseInput(uploadInput, request.body, 'photo upload')
    if (context.sessions) {
      const owner = context.sessions.of(request).userId
      if (owner !== String(upload.userId))
        throw new HttpError(401, 'E_LOGIN_REQUIRED', 'log in as the owner to upload a photo')
    }
    // The job row exists if and only if the photo row does: a crash between the two cannot lose a
    // photo's processing, and a rolled-back upload leaves no job behind.
    const photo = await context.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('photos')
        .values({ user_id: upload.userId, caption: upload.caption, hue: upload.hue })
        .returning('id')
        .executeTakeFirstOrThrow()
      await photoOutbox.enqueue(trx, job, { photoId: row.id, hue: upload.hue, requestId: request.id })
      return row
    })
    request.log.info({ photoId: photo.id }, 'photo uploaded')
    return reply
      .code(201)
      .header('x-request-id', request.id)
      .send({
        id: photo.id,
        thumbnail: context.assetUrl(`/thumbnails/${photo.id}.jpg`),
      })
  })

  fastify.get('/thumbnails/:file', async (request, reply) => {
    const file = String((request.params as { file?: unknown }).file ?? '')
    if (!file.endsWith('.jpg')) throw new HttpError(404, 'E_NOT_FOUND', 'thumbnails are served as <id>.jpg')
    const id = parseInput(idParam, file.slice(0, -4), 'photo id')
    const thumbnail = await context.db
      .selectFrom('photo_thumbnails')
      .select(['jpeg'])
      .where('photo_id', '=', id)
      .executeTakeFirst()
    // Not processed yet: the 404 is no-store (the app's default), so the edge asks again next time.
    if (!thumbnail) throw new HttpError(404, 'E_THUMBNAIL_NOT_READY', `photo ${id} has no thumbnail yet`)
    return reply
      .type('image/jpeg')
      .header('cache-control', IMMUTABLE)
      .header('surrogate-key', `thumbnail-${id} photos`)
      .send(thumbnail.jpeg)
  })
}
