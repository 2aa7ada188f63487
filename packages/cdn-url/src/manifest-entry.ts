export { type AssetManifest, type ManifestEntry, parseManifest, readManifest } from './manifest.js'
export {
  type BuildManifestOptions,
  type BuildManifestResult,
  buildManifest,
  fingerprintedName,
} from './manifest-builder.js'
