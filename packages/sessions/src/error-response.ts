import { SessionError } from './errors.js'

/** Status and JSON body an adapter answers with when a session operation fails. */
export function errorResponseOf(error: unknown): { status: number; body: string } {
  if (error instanceof SessionError) {
    return {
      status: error.statusCode,
      body: JSON.stringify({ error: { code: error.code, message: error.message } }),
    }
  }
  return {
    status: 500,
    body: JSON.stringify({ error: { code: 'E_INTERNAL', message: 'Internal Server Error' } }),
  }
}
