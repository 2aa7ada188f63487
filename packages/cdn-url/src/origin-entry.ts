export type { CachePolicy } from './cache-policy.js'
export { createOriginHandler, type OriginHandler, writeOriginResponse } from './node-origin.js'
export {
  createOrigin,
  type Origin,
  type OriginOptions,
  type OriginRequest,
  type OriginResponse,
} from './origin.js'
