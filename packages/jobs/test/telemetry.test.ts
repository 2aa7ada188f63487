import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { startPostgres, waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { BullMQOtel } from 'bullmq-otel'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createOutbox, createOutboxRelay, createProducer, createWorker, defineJob } from '../src/index.js'
import { jobsClient } from './helpers.js'

const env = useRedis({ connect: jobsClient })
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
    const queue = uniqueName('otel-')
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

  it('through the outbox too: the trace context is stored in the row, and the run joins the request trace after the relay', async () => {
    const postgres = await startPostgres()
    const pool = new pg.Pool({ ...postgres.primary.connection, max: 2 })
    pool.on('error', () => {})
    const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool }) })
    try {
      const queue = uniqueName('otel-outbox-')
      const handlerTraces: string[] = []
      const job = defineJob({
        name: 'receipt',
        queue,
        schema: z.object({ orderId: z.string() }),
        handler: () => {
          handlerTraces.push(trace.getActiveSpan()?.spanContext().traceId ?? 'none')
        },
      })
      const outbox = createOutbox({ table: `otel_${queue.replace(/-/g, '_')}`, telemetry: new BullMQOtel() })
      await outbox.createTable(db)
      const requestTrace = await trace.getTracer('http').startActiveSpan('POST /orders', async (span) => {
        await db.transaction().execute((trx) => outbox.enqueue(trx, job, { orderId: 'o1' }))
        span.end()
        return span.spanContext().traceId
      })
      // The relay runs outside any trace (as its own process would).
      const relay = createOutboxRelay({ db, connection: env.redis, table: outbox.table })
      expect(await relay.relayOnce()).toBe(1)
      await relay.close()
      const worker = createWorker({ connection: env.redis, jobs: [job], telemetry: new BullMQOtel() })
      await waitFor('the job ran', () => handlerTraces.length === 1)
      expect(handlerTraces).toEqual([requestTrace])
      await worker.close()
      const producer = createProducer({ connection: env.redis })
      await producer.queue(queue).obliterate({ force: true })
      await producer.close()
    } finally {
      await db.destroy()
      await postgres.stop()
    }
  })
})
