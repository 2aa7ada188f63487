export {
  createPurger,
  type PurgeAdapter,
  type PurgeResult,
  type Purger,
  type PurgerOptions,
} from './purge.js'
export { type CloudflarePurgeOptions, cloudflarePurge } from './purge-cloudflare.js'
export { type CloudFrontPurgeOptions, cloudfrontPurge, invalidationBatchXml } from './purge-cloudfront.js'
export { type FastlyPurgeOptions, fastlyPurge } from './purge-fastly.js'
export { type VarnishPurgeOptions, varnishPurge } from './purge-varnish.js'
export { type AwsCredentials, type SigV4Request, signV4 } from './sigv4.js'
