import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { AppContext } from '../app.js'
import { verifyPassword } from '../passwords.js'
import { HttpError, loginInput, parseInput } from '../validation.js'

function sessionOf(context: AppContext, request: FastifyRequest) {
  if (!context.sessions) {
    throw new HttpError(501, 'E_SESSIONS_OFF', 'login needs the sessions block (stage 7 and later)')
  }
  return context.sessions.of(request)
}

export function registerAuthRoutes(fastify: FastifyInstance, context: AppContext): void {
  fastify.post('/login', async (request) => {
    const session = sessionOf(context, request)
    const { username, password } = parseInput(loginInput, request.body, 'login')
    const account = await context.users.findLogin(username)
    // The same answer for an unknown user and a wrong password: no probing for usernames.
    if (!account || !(await verifyPassword(password, account.passwordHash))) {
      throw new HttpError(401, 'E_BAD_CREDENTIALS', 'wrong username or password')
    }
    // A new session ID at login: a session fixed before login is worthless after it.
    await session.regenerate({ userId: String(account.id) })
    return { userId: account.id }
  })

  fastify.post('/logout', async (request) => {
    await sessionOf(context, request).destroy()
    return { userId: null }
  })

  /** Who this request is logged in as, and which server answered (the load side checks both). */
  fastify.get('/me', async (request) => {
    const userId = sessionOf(context, request).userId
    return { userId: userId === undefined ? null : Number(userId), server: context.config.name }
  })
}
