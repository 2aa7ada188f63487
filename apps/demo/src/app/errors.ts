import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { HttpError } from './validation.js'

/** The one JSON shape of every refusal: `{ error: { code, message, issues? } }`. */
export function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  issues?: unknown,
) {
  return reply
    .code(status)
    .type('application/json')
    .send({ error: { code, message, ...(issues !== undefined && { issues }) } })
}

/**
 * Bad input is the client's mistake: a 4xx with a clear code, never a 500. Fastify's own refusals
 * (malformed JSON, body over the limit, wrong content type) keep their 4xx status; anything else
 * is our fault, logged, and answered without internals.
 */
export function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof HttpError)
    return sendError(reply, error.status, error.code, error.message, error.issues)
  const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500
  if (status >= 400 && status < 500) {
    const code = 'code' in error && typeof error.code === 'string' ? error.code : 'E_BAD_REQUEST'
    return sendError(reply, status, code, error.message)
  }
  request.log.error({ err: error }, 'request failed')
  const unavailable = status === 503
  return sendError(
    reply,
    unavailable ? 503 : 500,
    unavailable ? 'E_UNAVAILABLE' : 'E_INTERNAL',
    unavailable ? 'a backing service is unavailable, retry shortly' : 'internal error',
  )
}
