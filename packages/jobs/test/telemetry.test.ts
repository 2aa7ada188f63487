import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { waitFor } from '@scale/testkit'
import { BullMQOtel } from 'bullmq-otel'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createProducer, createWorker, defineJob } from '../src/index.js'
import { uniqueQueue, useRedis } from './helpers.js'

const env = useRedis()
const exporter = new InMemorySpanExporter()
const contextManager = new AsyncLocalStorageContextManager()

beforeAll(() => {
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  )
  context.setGlobalContextManager(contextManager.enable())
  // What the OpenTelemetry Node SDK sets up: the trace context travels in W3C `traceparent` form.
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
})
afterAll(() => {
  trace.disable()
  context.disable()
  propagation.disable()
})

describe('OpenTelemetry (bullmq-otel)', () => {
  it('a web request and the job it enqueued are one trace: request span → enqueue span → run span → handler', async () => {
    const queue = uniqueQueue('otel')
    const handlerTraces: string[] = []
    const job = defineJob({
      name: 'welcome-email',
      queue,
      schema: z.object({ userId: z.string() }),
      handler: () => {
        handlerTraces.push(trace.getActiveSpan()?.spanContext().traceId ?? 'none')
      },
    })
    const producer = createProducer({
      connection: env.redis,
      telemetry: new BullMQOtel({ tracerName: 'web' }),
    })
    const worker = createWorker({
      connection: env.redis,
      jobs: [job],
      telemetry: new BullMQOtel({ tracerName: 'worker' }),
    })
    const tracer = trace.getTracer('http')
    const requestTraces: string[] = []
    const app = createServer((_req, res) => {
      tracer.startActiveSpan('POST /signup', async (span) => {
        requestTraces.push(span.spanContext().traceId)
        await producer.enqueue(job, { userId: 'u1' })
        span.end()
        res.writeHead(202).end()
      })
    })
    app.listen(0, '127.0.0.1')
    await once(app, 'listening')
    const url = `http://127.0.0.1:${(app.address() as AddressInfo).port}/signup`
    try {
      expect((await fetch(url, { method: 'POST' })).status).toBe(202)
      expect((await fetch(url, { method: 'POST' })).status).toBe(202)
      await waitFor('both jobs ran', () => handlerTraces.length === 2)
    } finally {
      app.close()
    }
    // Each request's job ran in that request's trace, and the two requests are two traces.
    expect(new Set(requestTraces).size).toBe(2)
    expect(handlerTraces.sort()).toEqual([...requestTraces].sort())
    await waitFor(
      'spans exported',
      () => exporter.getFinishedSpans().filter((s) => s.name === `process ${queue}`).length === 2,
    )
    for (const traceId of requestTraces) {
      const names = exporter
        .getFinishedSpans()
        .filter((s) => s.spanContext().traceId === traceId)
        .map((s) => s.name)
      expect(names).toEqual(
        expect.arrayContaining(['POST /signup', `add ${queue}.welcome-email`, `process ${queue}`]),
      )
    }
    await worker.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })
})
