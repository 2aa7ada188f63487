import { randomUUID } from 'node:crypto'
import { CdnOptionsError } from './errors.js'
import type { PurgeAdapter } from './purge.js'
import { send } from './purge-http.js'
import { type AwsCredentials, signV4 } from './sigv4.js'

/** Options of {@link cloudfrontPurge}. */
export interface CloudFrontPurgeOptions {
  distributionId: string
  credentials: AwsCredentials
  /**
   * Paths per invalidation batch (CloudFront allows 3,000 in progress).
   * @default 1000
   */
  maxPerRequest?: number
  /** @default 'https://cloudfront.amazonaws.com' */
  endpoint?: string
}

const escapeXml = (value: string) =>
  value.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] as string,
  )

/** The `CreateInvalidation` request body, as the CloudFront API reference gives it. */
export function invalidationBatchXml(paths: readonly string[], callerReference: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<InvalidationBatch xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">' +
    `<Paths><Quantity>${paths.length}</Quantity><Items>${paths.map((p) => `<Path>${escapeXml(p)}</Path>`).join('')}</Items></Paths>` +
    `<CallerReference>${escapeXml(callerReference)}</CallerReference>` +
    '</InvalidationBatch>'
  )
}

/**
 * CloudFront: one `CreateInvalidation` per batch of paths (`POST /2020-05-31/distribution/{id}/invalidation`,
 * signed with SigV4). CloudFront has no surrogate keys: `purgeKeys` throws `PurgeUnsupportedError`.
 */
export function cloudfrontPurge(options: CloudFrontPurgeOptions): PurgeAdapter {
  if (!options.distributionId) throw new CdnOptionsError('distributionId', 'is required')
  if (!options.credentials?.accessKeyId || !options.credentials.secretAccessKey) {
    throw new CdnOptionsError('credentials', 'needs accessKeyId and secretAccessKey')
  }
  const endpoint = (options.endpoint ?? 'https://cloudfront.amazonaws.com').replace(/\/+$/, '')
  return {
    name: 'cloudfront',
    maxBatch: { urls: options.maxPerRequest ?? 1000, keys: 0 },
    async purgeUrls(urls, signal) {
      // Invalidation paths are the URL's path (already encoded); CloudFront ignores the query here.
      const paths = [...new Set(urls.map((url) => new URL(url, 'http://x').pathname))]
      const body = invalidationBatchXml(paths, `cdn-url-${Date.now()}-${randomUUID()}`)
      const url = `${endpoint}/2020-05-31/distribution/${encodeURIComponent(options.distributionId)}/invalidation`
      const headers = signV4(
        {
          method: 'POST',
          url,
          headers: { 'content-type': 'application/xml' },
          body,
          region: 'us-east-1',
          service: 'cloudfront',
        },
        options.credentials,
      )
      await send(url, { method: 'POST', headers, body }, signal)
    },
  }
}
