/**
 * The pino-compatible logger subset every @scale package logs through (an object of fields, then a
 * message: pino's argument order); `pino()` or a child of it passes as is.
 */
export interface Logger {
  debug?: LogMethod
  info: LogMethod
  warn: LogMethod
  error: LogMethod
}

/** One level of a {@link Logger}: an object of fields, then a message. */
export type LogMethod = (object: Record<string, unknown>, message: string) => void

/** Used when no logger is given: stays silent, as a library should. */
export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
}
