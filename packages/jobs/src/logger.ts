/**
 * The pino-compatible subset this package logs through (`pino()` or a child of it passes as is),
 * shared by @scale packages. Every message starts `[@scale/jobs]`; the object carries `err`,
 * `queue`, `jobId` where known. `silentLogger` is used when no logger is given.
 */
export { type Logger, silentLogger } from '@scale/observability'
