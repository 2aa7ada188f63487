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
  PurgeFailedError,
  PurgeUnsupportedError,
  SignatureExpiredError,
  SignatureInvalidError,
  SignatureMissingError,
  SigningKeyUnknownError,
} from './errors.js'
export { type AssetManifest, type ManifestEntry, parseManifest, readManifest } from './manifest.js'
export type { Logger, MetricsHook } from './observability.js'
