/**
 * One web server of the demo as its own process: the runner forks it with its config in
 * DEMO_APP_CONFIG and learns its port over IPC. It exits when the runner goes away (the IPC channel
 * closes even when the runner is SIGKILLed), so a web server is never left behind.
 */
import { buildApp } from './app.js'
import { parseAppConfig } from './config.js'

const config = parseAppConfig(JSON.parse(process.env.DEMO_APP_CONFIG ?? '{}'))
const app = await buildApp(config)
const address = await app.fastify.listen({ host: config.host, port: config.port })
const port = Number(new URL(address).port)
app.context.log.info({ port, config: { ...config, sessionSecret: '[redacted]' } }, 'web server listening')
process.send?.({ type: 'listening', port })

let stopping = false
async function shutdown(reason: string): Promise<void> {
  if (stopping) return
  stopping = true
  app.context.log.info({ reason }, 'web server stopping')
  const forced = setTimeout(() => process.exit(0), 3_000)
  forced.unref()
  await app.close().catch(() => {})
  process.exit(0)
}
process.on('disconnect', () => void shutdown('runner gone'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))
