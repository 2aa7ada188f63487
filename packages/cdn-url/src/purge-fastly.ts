import { CdnOptionsError } from './errors.js'
import type { PurgeAdapter } from './purge.js'
import { send } from './purge-http.js'

/** Options of {@link fastlyPurge}. */
export interface FastlyPurgeOptions {
  serviceId: string
  /** An API token with purge rights (sent as `Fastly-Key`). */
  apiToken: string
  /**
   * Mark content stale instead of removing it (`Fastly-Soft-Purge: 1`), so it can still be served stale.
   * @default false
   */
  soft?: boolean
  /** @default 'https://api.fastly.com' */
  endpoint?: string
}

/**
 * Fastly: surrogate keys in batches of up to 256 (`POST /service/{id}/purge` with a
 * `Surrogate-Key` header), and URLs one request each (`POST /purge/{host}{path}`).
 */
export function fastlyPurge(options: FastlyPurgeOptions): PurgeAdapter {
  if (!options.serviceId) throw new CdnOptionsError('serviceId', 'is required')
  if (!options.apiToken) throw new CdnOptionsError('apiToken', 'is required')
  const endpoint = (options.endpoint ?? 'https://api.fastly.com').replace(/\/+$/, '')
  const headers = {
    'fastly-key': options.apiToken,
    accept: 'application/json',
    ...(options.soft ? { 'fastly-soft-purge': '1' } : {}),
  }
  return {
    name: 'fastly',
    maxBatch: { urls: 16, keys: 256 },
    async purgeUrls(urls, signal) {
      await Promise.all(
        urls.map((url) => {
          const { host, pathname, search } = new URL(url)
          return send(`${endpoint}/purge/${host}${pathname}${search}`, { method: 'POST', headers }, signal)
        }),
      )
    },
    async purgeKeys(keys, signal) {
      await send(
        `${endpoint}/service/${encodeURIComponent(options.serviceId)}/purge`,
        { method: 'POST', headers: { ...headers, 'surrogate-key': keys.join(' ') } },
        signal,
      )
    },
  }
}
