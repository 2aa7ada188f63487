import { context, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { CacheLoaderTimeoutError } from '../src/index.js'
import { settled } from '../src/read-through-cache.js'
import { prefixOf, useCache } from './helpers/use-cache.js'

describe('an OpenTelemetry span per load', () => {
  const { cache } = useCache()
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const contextManager = new AsyncLocalStorageContextManager()

  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable())
    trace.setGlobalTracerProvider(provider)
  })
  beforeEach(() => exporter.reset())
  afterAll(async () => {
    await provider.shutdown()
    trace.disable()
    context.disable()
  })

  const loadSpans = () => exporter.getFinishedSpans().filter((span) => span.name === 'cache.load')

  it('one span per loader call (not per caller, none for a hit), parent of the loader spans, child of the caller span', async () => {
    const keyPrefix = prefixOf()
    const a = cache({ keyPrefix })
    await a.ready()
    const tracer = trace.getTracer('test')
    await tracer.startActiveSpan('request', async (request) => {
      const loader = () =>
        tracer.startActiveSpan('db.query', (query) => {
          query.end()
          return 'row'
        })
      const values = await Promise.all(Array.from({ length: 15 }, () => a.getOrLoad('user:1', loader)))
      expect(values.every((value) => value === 'row')).toBe(true)
      await settled(a)
      expect(await a.getOrLoad('user:1', loader)).toBe('row')
      request.end()
    })
    const [load, ...others] = loadSpans()
    expect(others).toEqual([])
    expect(load?.attributes).toMatchObject({ 'cache.key': 'user:1', 'cache.key_prefix': keyPrefix })
    const spans = exporter.getFinishedSpans()
    const request = spans.find((span) => span.name === 'request')
    const query = spans.find((span) => span.name === 'db.query')
    expect(load?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId)
    expect(query?.parentSpanContext?.spanId).toBe(load?.spanContext().spanId)
  })

  it('a failing loader, a hard timeout and a batch: error status and batch size on the span', async () => {
    const a = cache({ loaderHardTimeoutMs: 200 })
    await expect(
      a.getOrLoad('broken', () => {
        throw new Error('db down')
      }),
    ).rejects.toThrow('db down')
    await expect(a.getOrLoad('hung', () => new Promise<never>(() => {}))).rejects.toBeInstanceOf(
      CacheLoaderTimeoutError,
    )
    await a.getOrLoadMany(['b1', 'b2', 'b3'], async (keys) => keys.map((key) => `v-${key}`))
    await settled(a)
    const spans = loadSpans()
    const broken = spans.find((span) => span.attributes['cache.key'] === 'broken')
    const hung = spans.find((span) => span.attributes['cache.key'] === 'hung')
    const batch = spans.find((span) => span.attributes['cache.batch_size'] !== undefined)
    expect(broken?.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'db down' })
    expect(broken?.events.map((event) => event.name)).toContain('exception')
    expect(hung?.status.code).toBe(SpanStatusCode.ERROR)
    expect(hung?.status.message).toMatch(/200 ms/)
    expect(batch?.attributes['cache.batch_size']).toBe(3)
    expect(batch?.status.code).not.toBe(SpanStatusCode.ERROR)
  })

  it('a loader that rejects with undefined still ends its span with error status', async () => {
    const a = cache({})
    const failure = await a.getOrLoad('nothing-thrown', () => Promise.reject(undefined)).catch((e) => ({ e }))
    expect(failure).toEqual({ e: undefined })
    await settled(a)
    const span = loadSpans().find((s) => s.attributes['cache.key'] === 'nothing-thrown')
    expect(span?.status.code).toBe(SpanStatusCode.ERROR)
  })
})
