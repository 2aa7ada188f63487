import type { PostgresNode } from '@scale/testkit'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { afterEach, beforeEach } from 'vitest'

export interface Database {
  users: { id: string; name: string; bucket_hint: number | null }
  events: { id: string; user_id: string; kind: string; amount: number; score: number }
}

export const USERS_SCHEMA = `create table if not exists users (
  id bigint primary key,
  name text not null,
  bucket_hint int
)`

export function pool(node: PostgresNode, max = 5): pg.Pool {
  const p = new pg.Pool({ ...node.connection, max, connectionTimeoutMillis: 5_000 })
  p.on('error', () => {}) // a server killed or stopped under the pool must not crash the test process
  return p
}

export function kysely<DB = Database>(node: PostgresNode, max = 5): Kysely<DB> {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: pool(node, max) }) })
}

export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/**
 * The unhandled rejections seen during each test of the calling `describe` (reset before each),
 * for tests that pause a server and must not leave a rejection nobody handles.
 */
export function useUnhandledRejections(): () => unknown[] {
  let unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => unhandled.push(reason)
  beforeEach(() => {
    unhandled = []
    process.on('unhandledRejection', onUnhandled)
  })
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled)
  })
  return () => unhandled
}
