import { CompiledQuery, type TransactionSettings } from 'kysely'

/** BEGIN, with the isolation level and access mode Kysely was asked for. */
export function beginStatement(settings: TransactionSettings): CompiledQuery {
  if (!settings.isolationLevel && !settings.accessMode) return CompiledQuery.raw('begin')
  let text = 'start transaction'
  if (settings.isolationLevel) text += ` isolation level ${settings.isolationLevel}`
  if (settings.accessMode) text += ` ${settings.accessMode}`
  return CompiledQuery.raw(text)
}

export const COMMIT = CompiledQuery.raw('commit')
export const ROLLBACK = CompiledQuery.raw('rollback')

const SAVEPOINT_COMMANDS = {
  savepoint: 'savepoint',
  rollbackToSavepoint: 'rollback to savepoint',
  releaseSavepoint: 'release savepoint',
} as const

export type SavepointAction = keyof typeof SAVEPOINT_COMMANDS

/** SAVEPOINT / ROLLBACK TO SAVEPOINT / RELEASE SAVEPOINT with the name quoted as an identifier. */
export function savepointStatement(action: SavepointAction, name: string): CompiledQuery {
  return CompiledQuery.raw(`${SAVEPOINT_COMMANDS[action]} "${name.replaceAll('"', '""')}"`)
}
