/** The logger, metrics hook and never-throwing wrapper shared by @scale packages (CONTRIBUTING.md). */
export { type Logger, type MetricsHook, Observability } from '@scale/observability'

/** @internal the name this package's log lines start with. */
export const SOURCE = '@scale/sharding'
