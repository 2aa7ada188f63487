/**
 * The pino-compatible subset this package logs through: `pino()` (or a child of it) passes as is.
 * Every message starts `[@scale/jobs]`; the object carries `err`, `queue`, `jobId` where known.
 */
export interface Logger {
  debug?(object: Record<string, unknown>, message: string): void
  info(object: Record<string, unknown>, message: string): void
  warn(object: Record<string, unknown>, message: string): void
  error(object: Record<string, unknown>, message: string): void
}

/** @internal used when no logger is given: stays silent, as a library should. */
export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
}
