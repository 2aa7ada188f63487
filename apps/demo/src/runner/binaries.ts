import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { postgresBindir } from '@scale/testkit'

interface Requirement {
  what: string
  /** Debian package that provides it. */
  aptPackage: string
  present(): boolean
}

const onPath = (binary: string) =>
  spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0 ||
  existsSync(`/usr/sbin/${binary}`)

const REQUIREMENTS: Requirement[] = [
  {
    what: 'PostgreSQL server (initdb, postgres)',
    aptPackage: 'postgresql',
    present: () => {
      try {
        postgresBindir()
        return true
      } catch {
        return false
      }
    },
  },
  { what: 'redis-server', aptPackage: 'redis-server', present: () => onPath('redis-server') },
  { what: 'redis-cli', aptPackage: 'redis-tools', present: () => onPath('redis-cli') },
  { what: 'haproxy', aptPackage: 'haproxy', present: () => onPath('haproxy') },
  { what: 'varnishd', aptPackage: 'varnish', present: () => onPath('varnishd') },
  { what: 'cc (Varnish compiles its VCL with it)', aptPackage: 'gcc', present: () => onPath('cc') },
  // Not used by the run itself: the report's browser test needs it, and after `pnpm demo` the
  // README's second command (the tests) should find everything in place.
  {
    what: 'chromium (the report test)',
    aptPackage: 'chromium',
    present: () => existsSync('/usr/bin/chromium'),
  },
]

function canInstall(): 'root' | 'sudo' | undefined {
  if (process.getuid?.() === 0) return 'root'
  return spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0 ? 'sudo' : undefined
}

/**
 * The demo runs real servers from the machine's binaries (and the tests need the same, plus
 * Chromium). Installs the missing ones with apt-get
 * when it may (root or passwordless sudo), saying what; otherwise throws the one command to run.
 */
export function ensureServerBinaries(log: (line: string) => void): void {
  const missing = REQUIREMENTS.filter((r) => !r.present())
  const packages = [...new Set(missing.map((r) => r.aptPackage))]
  const rootNeedsUser =
    process.getuid?.() === 0 && spawnSync('id', ['postgres'], { stdio: 'ignore' }).status !== 0
  if (packages.length > 0) {
    const command = `apt-get update && apt-get install -y ${packages.join(' ')}`
    const how = canInstall()
    if (!how || !existsSync('/usr/bin/apt-get')) {
      throw new Error(
        `missing: ${missing.map((r) => r.what).join(', ')}. Install them with:\n  sudo sh -c '${command}'`,
      )
    }
    log(`installing ${packages.join(', ')} (missing: ${missing.map((r) => r.what).join(', ')}) with apt-get`)
    const sudo = how === 'sudo' ? ['sudo', '-n'] : []
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    for (const args of [
      ['apt-get', 'update'],
      ['apt-get', 'install', '-y', '--no-install-recommends', ...packages],
    ]) {
      const [bin, ...rest] = [...sudo, ...args] as [string, ...string[]]
      execFileSync(bin, rest, { stdio: 'inherit', env })
    }
  }
  // Postgres refuses to run as root; the test kit runs it as this unprivileged user.
  if (rootNeedsUser) {
    log('creating the unprivileged system user `postgres` (Postgres refuses to run as root)')
    execFileSync('useradd', ['--system', 'postgres'], { stdio: 'inherit' })
  }
}
