import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (where pnpm-workspace.yaml is), so the report lands in `<root>/demo-report`. */
export function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const parent = dirname(dir)
    if (parent === dir) return process.cwd()
    dir = parent
  }
  return dir
}

export function reportDir(): string {
  return resolve(process.env.DEMO_REPORT_DIR ?? join(repositoryRoot(), 'demo-report'))
}
