import { ScaleError, type ScaleErrorOptions } from '@scale/observability'

/** Every code an error of this package carries; stable, safe to switch on. */
export type CdnUrlErrorCode =
  | 'E_CDN_INVALID_OPTIONS'
  | 'E_CDN_CLOSED'
  | 'E_CDN_ASSET_NOT_FOUND'
  | 'E_CDN_MANIFEST_INVALID'
  | 'E_CDN_MANIFEST_BUILD_FAILED'
  | 'E_CDN_PATH_INVALID'
  | 'E_CDN_PATH_TRAVERSAL'
  | 'E_CDN_SIGNATURE_MISSING'
  | 'E_CDN_SIGNATURE_INVALID'
  | 'E_CDN_SIGNATURE_EXPIRED'
  | 'E_CDN_SIGNING_KEY_UNKNOWN'
  | 'E_CDN_PURGE_FAILED'
  | 'E_CDN_PURGE_UNSUPPORTED'
  | 'E_CDN_PURGE_ADAPTER_NONCONFORMANT'

/** Base class of every error this package throws. */
export class CdnUrlError extends ScaleError<CdnUrlErrorCode> {
  /** HTTP status the origin middleware answers with when this error ends a request. */
  readonly statusCode: number

  constructor(
    code: CdnUrlErrorCode,
    message: string,
    options: ScaleErrorOptions & { statusCode?: number } = {},
  ) {
    super('@scale/cdn-url', code, message, options)
    this.statusCode = options.statusCode ?? 500
  }
}

/** An option given to a factory cannot work; thrown by the factory, never at the first call. */
export class CdnOptionsError extends CdnUrlError {
  constructor(option: string, message: string) {
    super('E_CDN_INVALID_OPTIONS', `option \`${option}\`: ${message}`, { context: { option } })
  }
}

/** A method was called after `close()`. */
export class CdnClosedError extends CdnUrlError {
  constructor(method: string) {
    super('E_CDN_CLOSED', `\`${method}()\` was called after close(); create a new instance.`, {
      context: { method },
    })
  }
}

/** `url()` was asked for a path the manifest does not list (and `onMissingAsset` is `'error'`). */
export class AssetNotFoundError extends CdnUrlError {
  constructor(path: string) {
    super(
      'E_CDN_ASSET_NOT_FOUND',
      `"${path}" is not in the manifest. Rebuild the manifest, fix the path, or set onMissingAsset: 'passthrough'.`,
      { context: { path }, statusCode: 404 },
    )
  }
}

/** A manifest file (ours, Vite's or webpack's) could not be read or has an unexpected shape. */
export class ManifestInvalidError extends CdnUrlError {
  constructor(source: string, reason: string, cause?: unknown) {
    super('E_CDN_MANIFEST_INVALID', `manifest ${source}: ${reason}`, { cause, context: { source } })
  }
}

/** Hashing or copying the asset directory failed; nothing was written to the manifest. */
export class ManifestBuildError extends CdnUrlError {
  constructor(file: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    super('E_CDN_MANIFEST_BUILD_FAILED', `could not fingerprint ${file}: ${reason}`, {
      cause,
      context: { file },
    })
  }
}

/** A path or URL cannot be encoded or decoded (malformed percent-encoding, not a string, ...). */
export class InvalidPathError extends CdnUrlError {
  constructor(path: string, reason: string) {
    super('E_CDN_PATH_INVALID', `path ${JSON.stringify(path.slice(0, 200))} ${reason}`, {
      context: { path },
      statusCode: 400,
    })
  }
}

/** The path tries to leave its root: `..`, `.` segments, backslashes or NUL, encoded or not. */
export class PathTraversalError extends CdnUrlError {
  constructor(path: string, reason: string) {
    super('E_CDN_PATH_TRAVERSAL', `path ${JSON.stringify(path.slice(0, 200))} refused: ${reason}`, {
      context: { path, reason },
      statusCode: 400,
    })
  }
}

/** A URL that must be signed carries no signature parameters. */
export class SignatureMissingError extends CdnUrlError {
  constructor(path: string) {
    super('E_CDN_SIGNATURE_MISSING', `${path} is not signed; sign it with cdn.url(path, { sign: true }).`, {
      context: { path },
      statusCode: 403,
    })
  }
}

/** The signature does not match what was signed: the path, query, expiry or key id was changed. */
export class SignatureInvalidError extends CdnUrlError {
  constructor(path: string, reason: string) {
    super('E_CDN_SIGNATURE_INVALID', `signature of ${path} is invalid: ${reason}`, {
      context: { path, reason },
      statusCode: 403,
    })
  }
}

/** The signed URL verified but its expiry has passed. */
export class SignatureExpiredError extends CdnUrlError {
  constructor(path: string, expiresAt: Date) {
    super(
      'E_CDN_SIGNATURE_EXPIRED',
      `signed URL for ${path} expired at ${expiresAt.toISOString()}; sign a new one.`,
      {
        context: { path, expiresAt },
        statusCode: 403,
      },
    )
  }
}

/** The URL names a key id this verifier does not hold (never known, or rotated out). */
export class SigningKeyUnknownError extends CdnUrlError {
  constructor(keyId: string) {
    super('E_CDN_SIGNING_KEY_UNKNOWN', `signing key "${keyId}" is not configured (rotated out?).`, {
      context: { keyId },
      statusCode: 403,
    })
  }
}

/**
 * A purge request failed after its retries; `context.items` lists what was not purged, and
 * `context.retryAfterMs` the wait the provider asked for when it was longer than `maxDelayMs`.
 */
export class PurgeFailedError extends CdnUrlError {
  constructor(
    provider: string,
    kind: 'urls' | 'keys',
    items: readonly string[],
    cause: unknown,
    extra: { retryAfterMs?: number } = {},
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    const retry =
      extra.retryAfterMs === undefined
        ? ''
        : `; the provider asks to retry in ${Math.ceil(extra.retryAfterMs / 1000)} s (more than maxDelayMs): purge again then`
    super('E_CDN_PURGE_FAILED', `${provider}: purging ${items.length} ${kind} failed: ${reason}${retry}`, {
      cause,
      context: { provider, kind, items, ...extra },
      statusCode: 502,
    })
  }
}

/** The provider cannot purge this way (CloudFront has no surrogate keys). */
export class PurgeUnsupportedError extends CdnUrlError {
  constructor(provider: string, what: string) {
    super('E_CDN_PURGE_UNSUPPORTED', `${provider} cannot purge ${what}.`, { context: { provider, what } })
  }
}

/** A purge adapter broke a rule of the conformance suite (`@scale/cdn-url/testing`). */
export class PurgeAdapterNonConformantError extends CdnUrlError {
  constructor(adapter: string, rule: string) {
    super('E_CDN_PURGE_ADAPTER_NONCONFORMANT', `purge adapter ${adapter}: ${rule}`, {
      context: { adapter, rule },
    })
  }
}
