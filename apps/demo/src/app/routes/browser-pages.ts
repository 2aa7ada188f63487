import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sql } from 'kysely'
import sharp from 'sharp'
import { z } from 'zod'
import type { AppContext } from '../app.js'
import { escapeHtml as html } from '../escape-html.js'
import { parseMultipart } from '../multipart.js'
import { hashPassword, verifyPassword } from '../passwords.js'
import { photoJob, photoOutbox } from '../photo-job.js'
import { HttpError } from '../validation.js'

/** Largest photo the upload form takes. */
export const UPLOAD_LIMIT_BYTES = 2 * 1024 * 1024

const signupInput = z.strictObject({
  username: z.string().regex(/^[a-z0-9_.-]{3,40}$/, 'username: 3 to 40 of a-z 0-9 _ . -'),
  password: z.string().min(8, 'password: at least 8 characters').max(200),
  firstName: z.string().trim().min(1, 'first name is required').max(60),
  lastName: z.string().trim().min(1, 'last name is required').max(60),
})
const loginForm = z.strictObject({ username: z.string().max(64), password: z.string().max(256) })

const job = photoJob()

/** One field: a visible label tied to its input (screen readers announce it). */
const field = (name: string, label: string, type = 'text', extra = '') =>
  `<p><label for="${name}">${label}</label><br><input id="${name}" name="${name}" type="${type}" ${extra} required></p>`

function page(context: AppContext, title: string, body: string, error?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${html(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${html(context.assetUrl('/assets/app.css'))}"></head>
<body><nav><a href="/signup">Sign up</a> · <a href="/login">Log in</a> · <a href="/profile">Profile</a> · <a href="/gallery">Gallery</a></nav>
<main><h1>${html(title)}</h1>${error ? `<p role="alert" class="error">${html(error)}</p>` : ''}${body}</main></body></html>`
}

const send = (reply: FastifyReply, status: number, text: string) =>
  reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(text)

function sessionOf(context: AppContext, request: FastifyRequest) {
  if (!context.sessions) throw new HttpError(501, 'E_SESSIONS_OFF', 'the pages need the sessions block')
  return context.sessions.of(request)
}

const firstIssue = (error: z.ZodError) => error.issues[0]?.message ?? 'invalid input'

const SIGNUP_FORM = `<form method="post" action="/signup" aria-label="Sign up">
${field('username', 'Username', 'text', 'autocomplete="username"')}${field('password', 'Password', 'password', 'autocomplete="new-password" minlength="8"')}
${field('firstName', 'First name')}${field('lastName', 'Last name')}<p><button type="submit">Sign up</button></p></form>`
const LOGIN_FORM = `<form method="post" action="/login/form" aria-label="Log in">
${field('username', 'Username', 'text', 'autocomplete="username"')}${field('password', 'Password', 'password', 'autocomplete="current-password"')}
<p><button type="submit">Log in</button></p></form>`
const UPLOAD_FORM = `<form method="post" action="/upload" enctype="multipart/form-data" aria-label="Upload a photo">
${field('photo', 'Photo (JPEG, PNG or WebP, up to 2 MB)', 'file', 'accept="image/jpeg,image/png,image/webp"')}${field('caption', 'Caption', 'text', 'maxlength="200"')}
<p><button type="submit">Upload</button></p></form>`

/**
 * The app as a person sees it: server-rendered pages to sign up, log in, see the profile, upload a
 * photo and watch it appear processed in the gallery. No JavaScript; images and CSS come from the
 * asset URLs (the CDN edge). Registered in its own scope so the form parsers touch no API route.
 */
export function registerBrowserPages(fastify: FastifyInstance, context: AppContext): void {
  void fastify.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, body, done) =>
      done(null, Object.fromEntries(new URLSearchParams(String(body)))),
    )
    scope.addContentTypeParser(
      'multipart/form-data',
      { parseAs: 'buffer', bodyLimit: UPLOAD_LIMIT_BYTES },
      (request, body, done) => {
        const parts = parseMultipart(body as Buffer, request.headers['content-type'] ?? '')
        if (parts) done(null, parts)
        else done(new HttpError(400, 'E_BAD_MULTIPART', 'the upload is not well-formed multipart/form-data'))
      },
    )

    scope.get('/signup', async (_request, reply) => send(reply, 200, page(context, 'Sign up', SIGNUP_FORM)))
    scope.post('/signup', async (request, reply) => {
      const parsed = signupInput.safeParse(request.body)
      if (!parsed.success)
        return send(reply, 400, page(context, 'Sign up', SIGNUP_FORM, firstIssue(parsed.error)))
      const input = parsed.data
      const passwordHash = await hashPassword(input.password)
      try {
        await context.db
          .insertInto('users')
          .values({
            id: sql<number>`nextval('users_signup_id')`,
            username: input.username,
            password_hash: passwordHash,
            first_name: input.firstName,
            last_name: input.lastName,
            street_address: '',
            city: '',
            state: '',
            postal_code: '',
            phone_numbers: '[]',
          })
          .execute()
      } catch (error) {
        if ((error as { code?: string }).code !== '23505') throw error
        return send(reply, 409, page(context, 'Sign up', SIGNUP_FORM, 'that username is taken'))
      }
      return reply.redirect('/login?signed-up=1', 303)
    })

    scope.get('/login', async (request, reply) => {
      const signedUp = (request.query as Record<string, string>)['signed-up'] === '1'
      const welcome = signedUp ? '<p role="status">Account created: log in.</p>' : ''
      return send(reply, 200, page(context, 'Log in', welcome + LOGIN_FORM))
    })
    scope.post('/login/form', async (request, reply) => {
      const session = sessionOf(context, request)
      const parsed = loginForm.safeParse(request.body)
      // On the primary (in a transaction): someone who just signed up logs in before a replica has the row.
      const account = parsed.success
        ? await context.db
            .transaction()
            .execute((trx) =>
              trx
                .selectFrom('users')
                .select(['id', 'password_hash'])
                .where('username', '=', parsed.data.username)
                .executeTakeFirst(),
            )
        : undefined
      if (!parsed.success || !account || !(await verifyPassword(parsed.data.password, account.password_hash)))
        return send(reply, 401, page(context, 'Log in', LOGIN_FORM, 'wrong username or password'))
      await session.regenerate({ userId: String(account.id) })
      return reply.redirect('/profile', 303)
    })

    scope.get('/profile', async (request, reply) => {
      const userId = sessionOf(context, request).userId
      if (userId === undefined) return reply.redirect('/login', 303)
      const user = await context.db
        .transaction()
        .execute((trx) =>
          trx
            .selectFrom('users')
            .select(['username', 'first_name', 'last_name'])
            .where('id', '=', Number(userId))
            .executeTakeFirst(),
        )
      if (!user) return reply.redirect('/login', 303)
      const title = `${user.first_name} ${user.last_name}`
      return send(
        reply,
        200,
        page(
          context,
          title,
          `<p class="username">@${html(user.username)}</p><h2>Upload a photo</h2>${UPLOAD_FORM}
<p><a href="/gallery">Your gallery</a></p>`,
        ),
      )
    })

    scope.post('/upload', { bodyLimit: UPLOAD_LIMIT_BYTES }, async (request, reply) => {
      const userId = sessionOf(context, request).userId
      if (userId === undefined) return reply.redirect('/login', 303)
      const parts = Array.isArray(request.body)
        ? (request.body as ReturnType<typeof parseMultipart> & {})
        : []
      const photo = parts.find((p) => p.name === 'photo' && p.data.length > 0)
      const caption =
        parts
          .find((p) => p.name === 'caption')
          ?.data.toString('utf8')
          .trim()
          .slice(0, 200) || 'untitled'
      // A file that is not an image is refused here, not found out later by a worker.
      const format = photo
        ? await sharp(photo.data)
            .metadata()
            .then(
              (m) => m.format,
              () => undefined,
            )
        : undefined
      if (!photo || !format || !['jpeg', 'png', 'webp'].includes(format))
        return send(
          reply,
          400,
          page(context, 'Upload a photo', UPLOAD_FORM, 'choose a JPEG, PNG or WebP image'),
        )
      await context.db.transaction().execute(async (trx) => {
        const row = await trx
          .insertInto('photos')
          .values({ user_id: Number(userId), caption, hue: 0 })
          .returning('id')
          .executeTakeFirstOrThrow()
        await trx.insertInto('photo_originals').values({ photo_id: row.id, bytes: photo.data }).execute()
        await photoOutbox.enqueue(trx, job, { photoId: row.id, hue: 0 })
      })
      return reply.redirect('/gallery', 303)
    })

    scope.get('/gallery', async (request, reply) => {
      const userId = sessionOf(context, request).userId
      if (userId === undefined) return reply.redirect('/login', 303)
      const photos = await context.db
        .transaction()
        .execute((trx) =>
          trx
            .selectFrom('photos')
            .leftJoin('photo_thumbnails', 'photo_thumbnails.photo_id', 'photos.id')
            .select(['photos.id', 'photos.caption', 'photo_thumbnails.photo_id as processed'])
            .where('photos.user_id', '=', Number(userId))
            .orderBy('photos.id', 'desc')
            .limit(50)
            .execute(),
        )
      const items = photos
        .map((p) =>
          p.processed === null
            ? `<li class="pending">${html(p.caption)}: processing…</li>`
            : `<li><figure><img src="${html(context.assetUrl(`/thumbnails/${p.id}.jpg`))}" alt="${html(p.caption)}" width="160" height="160"><figcaption>${html(p.caption)}</figcaption></figure></li>`,
        )
        .join('')
      const body = photos.length ? `<ul class="gallery">${items}</ul>` : '<p>No photos yet.</p>'
      return send(
        reply,
        200,
        page(context, 'Your gallery', `${body}<p><a href="/profile">Upload another</a></p>`),
      )
    })
  })
}
