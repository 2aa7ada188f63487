// The reaper: a tiny detached process that outlives the test process by design. The test process
// tells it (over IPC) which server process groups and temp dirs it owns; when the IPC channel
// closes because the test process exited, crashed or was SIGKILLed, the reaper kills whatever is
// still registered and removes the dirs, so no postgres or redis-server is ever orphaned.
import { rmSync } from 'node:fs'

const groups = new Set()
const dirs = new Set()

process.on('message', (message) => {
  const { op, pgid, dir } = message
  if (op === 'add-group') groups.add(pgid)
  if (op === 'remove-group') groups.delete(pgid)
  if (op === 'add-dir') dirs.add(dir)
  if (op === 'remove-dir') dirs.delete(dir)
})

process.on('disconnect', () => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL')
    } catch {}
  }
  // Give the kernel a moment to release the processes' files before removing their dirs.
  setTimeout(() => {
    for (const dir of dirs) {
      try {
        rmSync(dir, { recursive: true, force: true })
      } catch {}
    }
    process.exit(0)
  }, 200)
})
