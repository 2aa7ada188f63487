import { createRequire } from 'node:module'
import type * as OtelApi from '@opentelemetry/api'

/** `@opentelemetry/api` if the application has it (an optional peer dependency), else `undefined`. */
function loadOtel(): typeof OtelApi | undefined {
  try {
    return createRequire(import.meta.url)('@opentelemetry/api') as typeof OtelApi
  } catch {
    return undefined
  }
}

const otel = loadOtel()
const TRACER_NAME = '@scale/read-through-cache'
/**
 * Got once: without an SDK the API hands out a new proxy tracer per call. A proxy tracer finds
 * an SDK registered later by itself, so caching it loses nothing.
 */
let tracer: OtelApi.Tracer | undefined
/** The API's no-op provider (a fresh proxy's delegate): the global one delegates to it until an SDK registers. */
const noopProvider = otel === undefined ? undefined : new otel.ProxyTracerProvider().getDelegate()

/** `true` while no SDK is registered: a load then needs no span at all. */
function noSdk(api: typeof OtelApi): boolean {
  const provider = api.trace.getTracerProvider() as Partial<OtelApi.ProxyTracerProvider>
  return typeof provider.getDelegate === 'function' && provider.getDelegate() === noopProvider
}

/** What one loader call's span is about. */
export interface LoadSpanInfo {
  /** The key loaded, or a batch's description. */
  what: string
  /** The cache's key prefix. */
  prefix: string
  /** For a `getOrLoadMany` batch: how many keys it loads. */
  batchSize?: number | undefined
}

/** Ends a load's span: with `error` its status is ERROR and the exception is recorded. */
export type EndLoadSpan = (failed: boolean, error?: unknown) => void

const noEnd: EndLoadSpan = () => {}

/**
 * Runs `load` inside a `cache.load` span (so the loader's own spans, a database query, are its
 * children) when `@opentelemetry/api` is installed; otherwise runs it as is. The span is ended by
 * the returned function, when the call settles or times out. Without a registered SDK it costs two
 * property reads per load.
 */
export function traceLoad<R>(info: LoadSpanInfo, load: () => R): [R, EndLoadSpan] {
  if (otel === undefined || noSdk(otel)) return [load(), noEnd]
  tracer ??= otel.trace.getTracer(TRACER_NAME)
  const span = tracer.startSpan('cache.load', {
    kind: otel.SpanKind.INTERNAL,
    attributes:
      info.batchSize === undefined
        ? { 'cache.key': info.what, 'cache.key_prefix': info.prefix }
        : { 'cache.batch_size': info.batchSize, 'cache.key_prefix': info.prefix },
  })
  // No SDK registered (or sampled out): skip the context switch, which is most of the cost.
  if (!span.isRecording()) return [load(), noEnd]
  const end: EndLoadSpan = (failed, error) => {
    if (failed) {
      span.recordException(error instanceof Error ? error : String(error))
      span.setStatus({
        code: otel.SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      })
    }
    span.end()
  }
  const active = otel.trace.setSpan(otel.context.active(), span)
  try {
    return [otel.context.with(active, load), end]
  } catch (error) {
    end(true, error)
    throw error
  }
}
