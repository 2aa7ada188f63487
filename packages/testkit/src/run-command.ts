import { execFile } from 'node:child_process'
import { CommandFailedError } from './errors.js'
import type { RunAs } from './unprivileged-user.js'

/** Runs a short-lived command to completion (initdb, pg_basebackup, redis-cli); throws with its output on failure. */
export function runCommand(command: string, args: string[], runAs?: RunAs): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { uid: runAs?.uid, gid: runAs?.gid, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } },
      (error, stdout, stderr) => {
        if (error) reject(new CommandFailedError([command, ...args].join(' '), `${stdout}${stderr}`))
        else resolve(stdout)
      },
    )
  })
}
