export { type Logger, type LogMethod, silentLogger } from './logger.js'
export { type MetricLabels, type MetricsHook, Observability } from './observability.js'
export {
  type CounterLike,
  type HistogramLike,
  type MetricCatalog,
  type MetricDeclaration,
  type PromClientLike,
  type PromClientMetricsOptions,
  type PromMetricConfiguration,
  promClientHook,
} from './prom-client.js'
export { ScaleError, type ScaleErrorContext, type ScaleErrorOptions } from './scale-error.js'
