import type { StandardSchemaV1 } from '@standard-schema/spec'
import type { Cluster, Redis } from 'ioredis'
import type { CircuitBreakerOptions } from './circuit-breaker.js'
import type { CookieAttributes } from './cookie-header.js'
import { resolveCookieOptions, type SessionCookieOptions } from './cookie-options.js'
import { SessionsOptionsError } from './errors.js'
import type { EncryptionOptions } from './field-encryption.js'
import type { Logger, MetricsHook } from './observability.js'
import type { SessionStore } from './session-store.js'

export type { SessionCookieOptions } from './cookie-options.js'

/** What to do when Redis cannot be reached while loading or saving a session. */
export type RedisDownPolicy = 'fail-closed' | 'anonymous'

/** Options of {@link createSessions}. */
export interface SessionsOptions<Fields extends Record<string, StandardSchemaV1> = Record<string, never>> {
  /**
   * Your ioredis client: a `Redis` or a `Cluster`. This package never closes it. Required unless
   * `store` is given.
   */
  redis?: Redis | Cluster
  /**
   * Where sessions live, when not in `redis`: any {@link SessionStore} that passes the
   * conformance suite of `@scale/sessions/testing` (e.g. `createMemorySessionStore()` in tests).
   * @default a Redis store over `redis`
   */
  store?: SessionStore
  /**
   * HMAC keys for the cookie signature, newest first, each at least 32 characters. Cookies signed
   * with any listed key verify; responses re-sign them with the first. Rotate by prepending a
   * key, retire by removing the last.
   */
  secrets: readonly string[]
  /** Prefix of every Redis key. @default 'sess:' */
  keyPrefix?: string
  /** Sliding expiry: a session unused this long ends. @default 3_600_000 (1 h) */
  idleTimeoutMs?: number
  /** Hard cap on a session's life, however active it is. @default 86_400_000 (24 h) */
  absoluteTimeoutMs?: number
  /**
   * A request that changes nothing extends the idle expiry only when the last extension is at
   * least this old, so read-only traffic costs one Redis read and no write. A session therefore
   * ends between `idleTimeoutMs - touchAfterMs` and `idleTimeoutMs` after its last request.
   * @default Math.min(60_000, idleTimeoutMs / 10)
   */
  touchAfterMs?: number
  /**
   * Deadline of one Redis command: a call not answered within it is abandoned and treated as
   * Redis being down (`SessionStoreUnavailableError`, then `onRedisDown`). @default 2_000
   */
  commandTimeoutMs?: number
  /**
   * @deprecated renamed `commandTimeoutMs` (the convention shared by the @scale packages); still
   * read when `commandTimeoutMs` is not given, removed in the next minor version.
   */
  redisTimeoutMs?: number
  /**
   * Once this many Redis calls in a row failed, stop calling Redis and fail fast (then apply
   * `onRedisDown`) until a background PING answers, at most one per `probeIntervalMs`. `false`
   * turns it off: every request then waits up to `commandTimeoutMs` during an outage.
   * @default { failureThreshold: 5, probeIntervalMs: 1_000 }
   */
  circuitBreaker?: CircuitBreakerOptions | false
  /**
   * `'fail-closed'`: loading or saving throws {@link SessionStoreUnavailableError} (adapters answer
   * 503). `'anonymous'`: the request continues with an anonymous session that is never saved.
   * @default 'fail-closed'
   */
  onRedisDown?: RedisDownPolicy
  /** Optional schema per data field (any Standard Schema: zod, valibot, arktype). @default undefined */
  fields?: Fields
  /** Cookie attributes. @default { name: 'sid', path: '/', httpOnly: true, secure: true, sameSite: 'Lax', hostPrefix: true } */
  cookie?: SessionCookieOptions
  /**
   * At most this many live sessions per user: a login beyond it ends the user's least recently
   * used session, in the same atomic step. @default undefined (no cap)
   */
  maxSessionsPerUser?: number
  /**
   * Encrypt each data field at rest (AES-256-GCM, bound to its session and field), with key
   * rotation. Metadata (times, user ID, user agent) stays readable. @default undefined (off)
   */
  encryption?: EncryptionOptions
  /** Longest user-agent string kept for the per-user session list. @default 256 */
  maxUserAgentLength?: number
  /**
   * How many verified cookies to remember so repeat requests skip the HMAC and SHA-256. Only
   * correctly signed cookies are kept; `0` turns the cache off.
   * @default 10_000
   */
  verifiedCookieCacheSize?: number
  /**
   * Send the session commands of one event-loop turn in one socket write (the client's socket is
   * corked until `setImmediate`), as node-redis does by default. Cuts the Redis client's CPU per
   * request substantially; commands of other code on the same client in that turn are batched
   * too, none is delayed beyond the turn. Ignored for a `Cluster`.
   * @default true
   */
  coalesceWrites?: boolean
  /**
   * Called with errors that are handled (dropped invalid stored fields, Redis outages under
   * `'anonymous'`, a cookie that could not be sent). They also go to `logger.warn`.
   * @default undefined
   */
  onError?: (error: Error) => void
  /**
   * Where the package logs: handled errors (`warn`), the circuit breaker opening (`error`) and
   * closing (`info`), a metrics hook that threw (`warn`, once). Any pino-compatible logger.
   * @default silent
   */
  logger?: Logger
  /**
   * Counters and histograms of loads, saves, rotations, revocations, breaker state and errors
   * (names in `SessionsMetric`). A hook that throws never breaks a request.
   * @default undefined
   */
  metrics?: MetricsHook
}

/** Options after defaults and checks. */
export interface ResolvedOptions {
  readonly redis: Redis | Cluster | undefined
  readonly store: SessionStore | undefined
  readonly secrets: readonly Buffer[]
  readonly keyPrefix: string
  readonly idleTimeoutMs: number
  readonly absoluteTimeoutMs: number
  readonly touchAfterMs: number
  readonly commandTimeoutMs: number
  readonly onRedisDown: RedisDownPolicy
  readonly circuitBreaker: Required<CircuitBreakerOptions> | false
  readonly fields: Readonly<Record<string, StandardSchemaV1>> | undefined
  readonly cookieName: string
  readonly cookie: CookieAttributes
  readonly maxUserAgentLength: number
  readonly maxSessionsPerUser: number | undefined
  readonly encryption: EncryptionOptions | undefined
  readonly verifiedCookieCacheSize: number
  readonly coalesceWrites: boolean
  readonly onError: ((error: Error) => void) | undefined
  readonly logger: Logger | undefined
  readonly metrics: MetricsHook | undefined
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new SessionsOptionsError(
      name,
      `${name} must be a positive integer of milliseconds, got ${value}.`,
      {
        value,
      },
    )
  }
  return value
}

function atLeastOne(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new SessionsOptionsError(name, `${name} must be an integer ≥ 1, got ${value}.`, { value })
  }
  return value
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new SessionsOptionsError(name, `${name} must be an integer ≥ 0, got ${value}.`, { value })
  }
  return value
}

export function resolveOptions(options: SessionsOptions<Record<string, StandardSchemaV1>>): ResolvedOptions {
  if (!options.redis && !options.store) {
    throw new SessionsOptionsError(
      'redis',
      '`redis` is required: pass your ioredis Redis or Cluster (or a `store`).',
    )
  }
  if (!Array.isArray(options.secrets) || options.secrets.length === 0) {
    throw new SessionsOptionsError('secrets', '`secrets` must list at least one signing key (newest first).')
  }
  for (const [index, secret] of options.secrets.entries()) {
    if (typeof secret !== 'string' || secret.length < 32) {
      throw new SessionsOptionsError(
        'secrets',
        `secrets[${index}] is shorter than 32 characters; use e.g. crypto.randomBytes(32).toString('base64url').`,
        { index },
      )
    }
  }
  const idleTimeoutMs = positiveInteger('idleTimeoutMs', options.idleTimeoutMs ?? 3_600_000)
  const absoluteTimeoutMs = positiveInteger('absoluteTimeoutMs', options.absoluteTimeoutMs ?? 86_400_000)
  if (absoluteTimeoutMs < idleTimeoutMs) {
    throw new SessionsOptionsError('absoluteTimeoutMs', 'absoluteTimeoutMs must be at least idleTimeoutMs.', {
      idleTimeoutMs,
      absoluteTimeoutMs,
    })
  }
  const touchAfterMs = options.touchAfterMs ?? Math.max(1, Math.min(60_000, Math.floor(idleTimeoutMs / 10)))
  if (!Number.isSafeInteger(touchAfterMs) || touchAfterMs < 0 || touchAfterMs >= idleTimeoutMs) {
    throw new SessionsOptionsError(
      'touchAfterMs',
      'touchAfterMs must be an integer ≥ 0 and below idleTimeoutMs.',
      {
        touchAfterMs,
      },
    )
  }
  const { cookieName, cookie } = resolveCookieOptions(options.cookie)
  return {
    redis: options.redis,
    store: options.store,
    secrets: options.secrets.map((secret) => Buffer.from(secret, 'utf8')),
    keyPrefix: options.keyPrefix ?? 'sess:',
    idleTimeoutMs,
    absoluteTimeoutMs,
    touchAfterMs,
    commandTimeoutMs:
      options.commandTimeoutMs === undefined && options.redisTimeoutMs !== undefined
        ? positiveInteger('redisTimeoutMs', options.redisTimeoutMs)
        : positiveInteger('commandTimeoutMs', options.commandTimeoutMs ?? 2_000),
    onRedisDown: options.onRedisDown ?? 'fail-closed',
    circuitBreaker:
      options.circuitBreaker === false
        ? false
        : {
            failureThreshold: positiveInteger(
              'circuitBreaker.failureThreshold',
              options.circuitBreaker?.failureThreshold ?? 5,
            ),
            probeIntervalMs: positiveInteger(
              'circuitBreaker.probeIntervalMs',
              options.circuitBreaker?.probeIntervalMs ?? 1_000,
            ),
          },
    fields: options.fields,
    cookieName,
    cookie,
    maxUserAgentLength: options.maxUserAgentLength ?? 256,
    encryption: options.encryption,
    maxSessionsPerUser:
      options.maxSessionsPerUser === undefined
        ? undefined
        : atLeastOne('maxSessionsPerUser', options.maxSessionsPerUser),
    verifiedCookieCacheSize: nonNegativeInteger(
      'verifiedCookieCacheSize',
      options.verifiedCookieCacheSize ?? 10_000,
    ),
    coalesceWrites: options.coalesceWrites ?? true,
    onError: options.onError,
    logger: options.logger,
    metrics: options.metrics,
  }
}
