import { execFileSync } from 'node:child_process'
import { TestkitError } from './errors.js'

export interface RunAs {
  uid: number
  gid: number
}

/**
 * Who Postgres runs as. Postgres refuses to start as root, and CI runs as root, so then the kit
 * runs it as an unprivileged user (`postgres` by default, or SCALE_PG_USER); otherwise as ourselves.
 */
export function postgresRunAs(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined
  const user = process.env.SCALE_PG_USER ?? 'postgres'
  try {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim())
    return { uid, gid }
  } catch (cause) {
    throw new TestkitError(
      'E_TESTKIT_NO_UNPRIVILEGED_USER',
      `running as root, and Postgres refuses root, but user \`${user}\` does not exist. ` +
        `Create it (\`useradd --system ${user}\`) or set SCALE_PG_USER to an existing unprivileged user.`,
      { cause },
    )
  }
}
