// SQLSTATE classes and Node/pg error shapes that mean "this connection or server is gone", as
// opposed to an error in the query itself. Only these make a read retry on another node.
const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, or in recovery before consistency)
])
const CONNECTION_ERROR_MESSAGES =
  /connection terminated|connection ended|connection error|server closed the connection|not queryable|timeout exceeded when trying to connect|socket hang up/i

/** True when the error says the server or the connection died, not that the SQL was wrong. */
export function isConnectionError(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (CONNECTION_ERROR_CODES.has(code) || code.startsWith('08'))) return true
  const message = (error as { message?: unknown }).message
  return typeof message === 'string' && CONNECTION_ERROR_MESSAGES.test(message)
}

/**
 * pg's pool gave up waiting for a connection (`connectionTimeoutMillis`): the pool is saturated or
 * the server slow to accept. Says nothing certain about the server's health.
 */
export function isPoolTimeout(error: unknown): boolean {
  const message =
    error !== null && typeof error === 'object' ? (error as { message?: unknown }).message : undefined
  return typeof message === 'string' && /timeout exceeded when trying to connect/i.test(message)
}

/** SQLSTATE 25006: the server is read-only (in recovery) and rejected the statement. */
export function isReadOnlyError(error: unknown): boolean {
  return error !== null && typeof error === 'object' && (error as { code?: unknown }).code === '25006'
}

/**
 * Rejects with a timeout error if `promise` does not settle in `ms` (and then calls `onTimeout`);
 * the timer never holds the process.
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  onTimeout?: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(Object.assign(new Error(`${what} timed out after ${ms} ms`), { code: 'ETIMEDOUT' }))
      onTimeout?.()
    }, ms)
    timer.unref()
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
