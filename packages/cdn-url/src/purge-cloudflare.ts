import { CdnOptionsError } from './errors.js'
import type { PurgeAdapter } from './purge.js'
import { PurgeHttpStatusError, send } from './purge-http.js'

/** Options of {@link cloudflarePurge}. */
export interface CloudflarePurgeOptions {
  zoneId: string
  /** An API token with the Cache Purge permission (sent as `Authorization: Bearer`). */
  apiToken: string
  /**
   * Most files or tags per request: 30 on most plans (raise it on Enterprise).
   * @default 30
   */
  maxPerRequest?: number
  /** @default 'https://api.cloudflare.com/client/v4' */
  endpoint?: string
}

/** Cloudflare: `POST /zones/{zone_id}/purge_cache` with `{"files": [...]}` or `{"tags": [...]}`. */
export function cloudflarePurge(options: CloudflarePurgeOptions): PurgeAdapter {
  if (!options.zoneId) throw new CdnOptionsError('zoneId', 'is required')
  if (!options.apiToken) throw new CdnOptionsError('apiToken', 'is required')
  const endpoint = (options.endpoint ?? 'https://api.cloudflare.com/client/v4').replace(/\/+$/, '')
  const max = options.maxPerRequest ?? 30
  const purge = async (body: Record<string, readonly string[]>, signal: AbortSignal): Promise<void> => {
    const text = await send(
      `${endpoint}/zones/${encodeURIComponent(options.zoneId)}/purge_cache`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${options.apiToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      },
      signal,
    )
    // Cloudflare can answer 200 with `success: false`.
    let parsed: { success?: boolean } | undefined
    try {
      parsed = JSON.parse(text) as { success?: boolean }
    } catch {}
    if (parsed?.success !== true) throw new PurgeHttpStatusError(400, text, null)
  }
  return {
    name: 'cloudflare',
    maxBatch: { urls: max, keys: max },
    purgeUrls: (urls, signal) => purge({ files: urls }, signal),
    purgeKeys: (keys, signal) => purge({ tags: keys }, signal),
  }
}
