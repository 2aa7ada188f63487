import { type AnyJobDefinition, parseJobName } from './define-job.js'
import { JobsOptionsError } from './errors.js'

/** @internal What a BullMQ job name resolves to in a worker. */
export interface Resolved {
  readonly name: string
  readonly version: number
  readonly definition: AnyJobDefinition | undefined
}

/** The one place a worker's `queue` + name key is built (NUL cannot occur in either part). */
function definitionKey(queue: string, name: string): string {
  return `${queue}\u0000${name}`
}

/** @internal The job definitions of one worker, looked up by queue and job name. */
export class WorkerDefinitions {
  /** The distinct queues of the definitions, in the order given. */
  readonly queues: readonly string[]
  readonly #byKey = new Map<string, AnyJobDefinition>()
  /** BullMQ job name (`<queue>` + `name@vN`) → its definition and version, resolved once. */
  readonly #resolved = new Map<string, Resolved>()

  constructor(jobs: readonly AnyJobDefinition[]) {
    if (jobs.length === 0)
      throw new JobsOptionsError('jobs', 'createWorker needs at least one job definition')
    for (const job of jobs) {
      const key = definitionKey(job.queue, job.name)
      if (this.#byKey.has(key)) {
        throw new JobsOptionsError('jobs', `job "${job.name}" is defined twice for queue "${job.queue}"`)
      }
      this.#byKey.set(key, job)
    }
    this.queues = [...new Set(jobs.map((job) => job.queue))]
  }

  /** The definition of the job named `name` (without version) on `queue`. */
  get(queue: string, name: string): AnyJobDefinition | undefined {
    return this.#byKey.get(definitionKey(queue, name))
  }

  /** What a stored BullMQ job name (`name@vN`) on `queue` means to this worker. */
  resolve(queue: string, jobName: string): Resolved {
    const key = definitionKey(queue, jobName)
    let resolved = this.#resolved.get(key)
    if (!resolved) {
      const { name, version } = parseJobName(jobName)
      resolved = { name, version, definition: this.get(queue, name) }
      // Bounded: names come from producers, but a queue holds few distinct job names and versions.
      if (this.#resolved.size < 10_000) this.#resolved.set(key, resolved)
    }
    return resolved
  }
}
