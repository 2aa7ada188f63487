import { z } from 'zod'

/** What one photo worker process runs with (JSON in DEMO_WORKER_CONFIG). */
export const workerConfigSchema = z.strictObject({
  name: z.string().default('worker'),
  /** Postgres primary URL: thumbnails are written there, the outbox is read there. */
  primary: z.string(),
  redis: z.string(),
  /** Jobs at once in this process. */
  concurrency: z.number().int().min(1).max(64).default(2),
})

export type WorkerConfigInput = z.input<typeof workerConfigSchema>

export function parseWorkerConfig(input: unknown) {
  return workerConfigSchema.parse(input)
}
