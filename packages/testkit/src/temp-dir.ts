import { chownSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { forgetDir, watchDir } from './reaper.js'
import type { RunAs } from './unprivileged-user.js'

/** A fresh temp dir (removed by the reaper if this process dies), owned by `owner` when given. */
export async function makeTempDir(prefix: string, owner?: RunAs): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `scale-testkit-${prefix}-`))
  if (owner) chownSync(dir, owner.uid, owner.gid)
  watchDir(dir)
  return dir
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
  forgetDir(dir)
}
