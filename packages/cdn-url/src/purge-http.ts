import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'

/** A provider answered with a status that is not 2xx. `retryable`: 429 and 5xx. */
export class PurgeHttpStatusError extends Error {
  readonly status: number
  readonly retryable: boolean
  readonly retryAfterMs: number | undefined

  constructor(status: number, body: string, retryAfter: string | null) {
    super(`HTTP ${status}: ${body.slice(0, 300)}`)
    this.name = 'PurgeHttpStatusError'
    this.status = status
    this.retryable = status === 429 || status >= 500
    this.retryAfterMs = parseRetryAfter(retryAfter)
  }
}

/** `Retry-After` in ms: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * Sends one provider request; resolves the body of a 2xx answer, throws otherwise.
 * Node's `http` rather than fetch: fetch drops a `Host` header, and a Varnish purge needs it.
 */
export function send(
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: string },
  signal: AbortSignal,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const target = new URL(url)
    const request = (target.protocol === 'https:' ? httpsRequest : httpRequest)(
      target,
      {
        method: init.method,
        headers: {
          ...init.headers,
          ...(init.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(init.body)) }),
        },
        signal,
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('error', reject)
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          const status = response.statusCode ?? 0
          if (status < 200 || status > 299) {
            const retryAfter = response.headers['retry-after']
            reject(new PurgeHttpStatusError(status, text, typeof retryAfter === 'string' ? retryAfter : null))
          } else {
            resolve(text)
          }
        })
      },
    )
    request.on('error', reject)
    request.end(init.body)
  })
}

/** Whether a failed attempt is worth repeating: network errors, timeouts, 429 and 5xx. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof PurgeHttpStatusError) return error.retryable
  return true
}
