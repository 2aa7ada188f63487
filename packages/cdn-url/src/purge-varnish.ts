import { CdnOptionsError } from './errors.js'
import type { PurgeAdapter } from './purge.js'
import { send } from './purge-http.js'

/** Options of {@link varnishPurge}. */
export interface VarnishPurgeOptions {
  /** Where Varnish listens (`http://127.0.0.1:6081`); purge requests go there whatever host the URLs name. */
  url: string
  /**
   * Requests in flight at once for a batch of URLs (Varnish purges one URL per request).
   * @default 8
   */
  concurrency?: number
}

/**
 * Varnish: `PURGE <path>` with the URL's `Host` per URL, and `BAN` with `Surrogate-Key: a b`
 * for keys. Needs a VCL that accepts both (the test kit's edge VCL does, from an ACL).
 */
export function varnishPurge(options: VarnishPurgeOptions): PurgeAdapter {
  let edge: URL
  try {
    edge = new URL(options.url)
  } catch {
    throw new CdnOptionsError('url', `"${options.url}" is not an absolute URL`)
  }
  const concurrency = options.concurrency ?? 8
  const base = edge.origin
  return {
    name: 'varnish',
    maxBatch: { urls: concurrency, keys: 50 },
    async purgeUrls(urls, signal) {
      await Promise.all(
        urls.map((url) => {
          const target = new URL(url)
          // Varnish hashes URL + Host: purge under the Host the clients used.
          return send(
            `${base}${target.pathname}${target.search}`,
            { method: 'PURGE', headers: { host: target.host } },
            signal,
          )
        }),
      )
    },
    async purgeKeys(keys, signal) {
      await send(`${base}/`, { method: 'BAN', headers: { 'surrogate-key': keys.join(' ') } }, signal)
    },
  }
}
