import { createPrivateKey, createSign, type KeyObject } from 'node:crypto'
import { CdnOptionsError, InvalidPathError } from './errors.js'

/** Options of {@link signCloudFrontUrl}. */
export interface CloudFrontSignOptions {
  /**
   * The URL exactly as viewers will request it, already percent-encoded (as `cdn.url()` returns
   * it). CloudFront compares the policy's `Resource` with the request byte for byte.
   */
  url: string
  /** The public key's ID in the CloudFront key group (or a legacy key pair ID). */
  keyPairId: string
  /** The RSA private key (PEM or a `KeyObject`). */
  privateKey: string | Buffer | KeyObject
  /** When the URL stops working. CloudFront takes whole seconds. */
  expiresAt: Date
}

/** The canned policy, byte for byte as AWS documents it: no whitespace, this key order. */
export function cannedPolicy(url: string, epochSeconds: number): string {
  return `{"Statement":[{"Resource":${JSON.stringify(url)},"Condition":{"DateLessThan":{"AWS:EpochTime":${epochSeconds}}}}]}`
}

/** CloudFront's URL-safe base64: `+` -> `-`, `=` -> `_`, `/` -> `~`. */
export function cloudFrontBase64(data: Buffer): string {
  return data.toString('base64').replace(/\+/g, '-').replace(/=/g, '_').replace(/\//g, '~')
}

/**
 * Signs a URL for CloudFront with a canned policy (RSA-SHA1 over the policy, as AWS documents):
 * appends `Expires`, `Signature` and `Key-Pair-Id`.
 *
 * @example
 * ```ts
 * const signed = signCloudFrontUrl({
 *   url: cdn.url('videos/intro.mp4'),
 *   keyPairId: 'K2JCJMDEHXQW5F',
 *   privateKey: process.env.CLOUDFRONT_PRIVATE_KEY,
 *   expiresAt: new Date(Date.now() + 3_600_000),
 * })
 * ```
 */
export function signCloudFrontUrl(options: CloudFrontSignOptions): string {
  const { url, keyPairId, expiresAt } = options
  if (!/^https?:\/\/[\x21-\x7e]+$/.test(url)) {
    throw new InvalidPathError(
      url,
      'must be an absolute http(s) URL, already percent-encoded (use cdn.url())',
    )
  }
  if (!/^[A-Z0-9]+$/.test(keyPairId))
    throw new CdnOptionsError('keyPairId', 'must be a CloudFront key ID (A-Z, 0-9)')
  let key: KeyObject
  try {
    key =
      typeof options.privateKey === 'object' && 'type' in options.privateKey
        ? options.privateKey
        : createPrivateKey(options.privateKey)
  } catch (cause) {
    throw Object.assign(new CdnOptionsError('privateKey', 'is not a readable RSA private key'), { cause })
  }
  const epoch = Math.floor(expiresAt.getTime() / 1000)
  const signature = createSign('RSA-SHA1').update(cannedPolicy(url, epoch)).sign(key)
  const separator = url.includes('?') ? '&' : '?'
  return `${url}${separator}Expires=${epoch}&Signature=${cloudFrontBase64(signature)}&Key-Pair-Id=${keyPairId}`
}
