export { type Cdn, createCdn, type UrlOptions } from './cdn.js'
export type { CdnOptions } from './cdn-options.js'
export { type CloudFrontSignOptions, signCloudFrontUrl } from './cloudfront-signer.js'
export {
  AssetNotFoundError,
  CdnClosedError,
  CdnOptionsError,
  CdnUrlError,
  type CdnUrlErrorCode,
  InvalidPathError,
  ManifestBuildError,
  ManifestInvalidError,
  PathTraversalError,
  PurgeAdapterNonConformantError,
  PurgeFailedError,
  PurgeUnsupportedError,
  SignatureExpiredError,
  SignatureInvalidError,
  SignatureMissingError,
  SigningKeyUnknownError,
} from './errors.js'
export { fallbackScript } from './fallback-script.js'
export type { HealthCheckOptions, ServingFrom } from './health-switch.js'
export type { ImageProvider, ImageTransform } from './image-transform.js'
export { type AssetManifest, type ManifestEntry, parseManifest, readManifest } from './manifest.js'
export type { Logger, MetricsHook } from './observability.js'
export type { QueryPair } from './path-encoding.js'
export { type PromClientLike, type PromClientMetricsOptions, promClientMetrics } from './prometheus.js'
export type { SigningKey, VerifiedUrl } from './url-signing.js'
