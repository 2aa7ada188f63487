/** The subset of a pino-compatible logger this package calls. */
export interface Logger {
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
