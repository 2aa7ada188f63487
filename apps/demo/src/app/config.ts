import { z } from 'zod'

/**
 * What one web process runs with. The code is the same at every stage; this object decides which
 * blocks are on (replicas, cache, sessions, CDN URLs). The runner passes it as JSON in DEMO_APP_CONFIG.
 */
export const appConfigSchema = z.strictObject({
  /** Name in logs and metrics, e.g. `web-2`. */
  name: z.string().default('web'),
  host: z.string().default('127.0.0.1'),
  /** 0: any free port (the process reports the one it got). */
  port: z.number().int().min(0).max(65_535).default(0),
  /** Primary: a connection string, or pg connection options (a Unix socket dir as `host` works). */
  primary: z.union([
    z.string(),
    z.strictObject({ host: z.string(), port: z.number().int(), user: z.string(), database: z.string() }),
  ]),
  /** Streaming replicas; reads go there through @scale/read-replica when non-empty. */
  replicas: z.array(z.string()).default([]),
  /** Redis URL; needed by `cache` and `sessions`. */
  redis: z.string().optional(),
  /** Stage 8: sessions in this Redis (shared by every region) instead of `redis`; `redis` stays the cache. */
  sessionsRedis: z.string().optional(),
  /** @scale/read-through-cache for `GET /users/:id`. */
  cache: z.boolean().default(false),
  /** @scale/sessions (Redis): login survives any server. */
  sessions: z.boolean().default(false),
  /** Where the pages' images and CSS are fetched from (the CDN edge); empty: the origin itself. */
  cdnBaseUrl: z.string().default(''),
  /** Connections per Postgres pool. */
  poolSize: z.number().int().min(1).max(100).default(10),
  sessionSecret: z.string().min(32).default('demo-only-session-secret-0123456789abcdef'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'silent']).default('info'),
})

export type AppConfigInput = z.input<typeof appConfigSchema>
export type AppConfig = z.output<typeof appConfigSchema>

export function parseAppConfig(input: unknown): AppConfig {
  return appConfigSchema.parse(input)
}
