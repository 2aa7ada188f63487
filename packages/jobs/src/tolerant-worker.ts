import { type Job, type JobJson, Worker } from 'bullmq'

/**
 * @internal A BullMQ `Worker` that survives a job whose stored data is not JSON (written by
 * hand, by another language's client, or corrupted). Plain BullMQ throws while building such a
 * job, outside any processor: the job stays `active` without a lock, the stalled checker puts it
 * back, the next fetch throws again, forever. Here the job is built with `null` data and the raw
 * text is kept, so the processor can fail it for good and dead-letter it with that text.
 */
export class TolerantWorker extends Worker {
  readonly #unparsable = new WeakMap<Job, string>()

  /** The stored text of a job whose data did not parse, else `undefined`. */
  unparsableData(job: Job): string | undefined {
    return this.#unparsable.get(job)
  }

  protected override createJob(data: JobJson, jobId: string): Job {
    try {
      return super.createJob(data, jobId)
    } catch (error) {
      if (!isUnparsable(data.data)) throw error
      const job = super.createJob({ ...data, data: 'null' }, jobId)
      this.#unparsable.set(job, data.data)
      return job
    }
  }
}

function isUnparsable(text: string): boolean {
  try {
    JSON.parse(text || '{}')
    return false
  } catch {
    return true
  }
}
