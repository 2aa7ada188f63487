import type { FastifyInstance } from 'fastify'
import type { AppContext } from '../app.js'
import { escapeHtml } from '../escape-html.js'
import { HttpError, idParam, parseInput } from '../validation.js'
import { consistent } from './consistency.js'

const html = escapeHtml

export function registerPageRoutes(fastify: FastifyInstance, context: AppContext): void {
  /** The profile page: its stylesheet and photos come through the asset URLs (the CDN from stage 6). */
  fastify.get('/u/:id', async (request, reply) => {
    const id = parseInput(idParam, (request.params as { id?: unknown }).id, 'user id')
    const [found, photos] = await consistent(context, request, reply, () =>
      Promise.all([
        context.users.get(id),
        context.db
          .selectFrom('photos')
          .select(['id', 'caption'])
          .where('user_id', '=', id)
          .limit(12)
          .execute(),
      ]),
    )
    if (!found) throw new HttpError(404, 'E_USER_NOT_FOUND', `user ${id} does not exist`)
    const { user } = found
    const images = photos
      .map((p) => `<img src="${html(context.assetUrl(`/photos/${p.id}.svg`))}" alt="${html(p.caption)}">`)
      .join('')
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(`<!doctype html><html><head><meta charset="utf-8"><title>${html(user.firstName)} ${html(user.lastName)}</title>
<link rel="stylesheet" href="${html(context.assetUrl('/assets/app.css'))}"></head>
<body><h1>${html(user.firstName)} ${html(user.lastName)}</h1>
<p class="address">${html(user.address.streetAddress)}, ${html(user.address.city)}, ${html(user.address.state)} ${html(user.address.postalCode)}</p>
<div class="photos">${images}</div></body></html>`)
  })
}
