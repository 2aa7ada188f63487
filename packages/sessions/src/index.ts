export type { CircuitBreakerOptions } from './circuit-breaker.js'
export { assertCsrf, csrfToken, doubleSubmitToken, verifyCsrfToken, verifyDoubleSubmit } from './csrf.js'
export {
  SessionConfigError,
  SessionCsrfError,
  SessionDataInvalidError,
  SessionDataNotSerializableError,
  SessionDataUnreadableError,
  SessionError,
  type SessionErrorCode,
  SessionHeadersSentError,
  SessionStateError,
  SessionStoreUnavailableError,
  SessionsClosedError,
  SessionsOptionsError,
} from './errors.js'
export type { EncryptionOptions } from './field-encryption.js'
export { addFlash, takeFlash } from './flash.js'
export { createMemorySessionStore } from './memory-session-store.js'
export type { Logger, MetricsHook, SessionsMetric } from './observability.js'
export type { RedisDownPolicy, SessionCookieOptions, SessionsOptions } from './options.js'
export {
  type PromClientMetricsOptions,
  type PromClientModule,
  type PromMetricConfiguration,
  promClientMetrics,
} from './prometheus.js'
export { type RegenerateOptions, Session, type SessionData } from './session.js'
export type {
  CreateOutcome,
  NewSessionRecord,
  SessionLocation,
  SessionStore,
  UserSessionInfo,
} from './session-store.js'
export {
  type CommitResult,
  createSessions,
  type DestroyAllOptions,
  type SessionRequest,
  type Sessions,
} from './sessions.js'
export type { DataOf, InferOutput, StandardSchemaV1 } from './standard-schema.js'
