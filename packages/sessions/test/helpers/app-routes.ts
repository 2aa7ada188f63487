import type { Session } from '../../src/index.js'

export type Data = Record<string, unknown>

/**
 * The one application every adapter serves in the tests, so each adapter is held to the same
 * behaviour: login, read, update, logout, a route that only reads, and a slow write.
 */
export async function route(
  method: string,
  url: URL,
  session: Session<Data>,
): Promise<{ status: number; body: unknown }> {
  const q = url.searchParams
  switch (`${method} ${url.pathname}`) {
    case 'POST /login':
      await session.regenerate({ userId: q.get('user') ?? 'alice', keepData: q.get('keep') === '1' })
      return { status: 200, body: { user: session.userId } }
    case 'GET /me':
      return {
        status: 200,
        body: { user: session.userId ?? null, data: session.toJSON(), handle: session.handle },
      }
    case 'POST /set': {
      const delay = Number(q.get('delay') ?? 0)
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
      session.set(q.get('k') as string, q.get('v'))
      return { status: 200, body: { ok: true } }
    }
    case 'POST /delete':
      session.delete(q.get('k') as string)
      return { status: 200, body: { ok: true } }
    case 'POST /logout':
      await session.destroy()
      return { status: 200, body: { user: null } }
    case 'GET /public':
      return { status: 200, body: { public: true } }
    case 'POST /regenerate':
      await session.regenerate({ keepData: true })
      return { status: 200, body: { user: session.userId ?? null } }
    default:
      return { status: 404, body: { error: 'not found' } }
  }
}
