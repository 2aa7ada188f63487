import { createOutbox, defineJob, type JobContext } from '@scale/jobs'
import { z } from 'zod'

/** The queue of stage 9: one job per uploaded photo, turned into a thumbnail by a worker. */
export const PHOTO_QUEUE = 'process-photo'

export const photoPayload = z.object({
  photoId: z.number().int().positive(),
  hue: z.number().int(),
  /** The upload's request ID (stage 10): the worker logs it, so one search finds the whole trip. */
  requestId: z.string().max(100).optional(),
})
export type PhotoPayload = z.infer<typeof photoPayload>

/** Web servers only enqueue; the handler runs in worker processes, which pass their own. */
const notInThisProcess = async () => {
  throw new Error('process-photo runs in worker processes only')
}

/**
 * The job definition, shared by web servers (enqueue through the outbox) and workers (run).
 * Retries cover a worker's database hiccup; a SIGKILLed worker's job is recovered by BullMQ's
 * stalled-job check, not by a retry.
 */
export function photoJob(
  handler: (payload: PhotoPayload, context: JobContext) => Promise<void> = notInThisProcess,
) {
  return defineJob({
    name: PHOTO_QUEUE,
    schema: photoPayload,
    retry: { attempts: 5, baseDelayMs: 200 },
    handler,
  })
}

/** The transactional outbox: the job row commits with the photo row or not at all. */
export const photoOutbox = createOutbox()
