import type { Job } from 'bullmq'
import type { JobContext } from './define-job.js'
import type { JobsError, ShutdownDeadlineError } from './errors.js'
import type { Resolved } from './worker-definitions.js'

/** @internal One job being run by a worker. */
export interface Flight {
  readonly job: Job
  /** Created on first use of the handler's `signal`: most handlers never read it. */
  controller: AbortController | undefined
  /** Set when the handler returned a promise: settles it early with RETURNED at the deadline. */
  handBack: (() => void) | undefined
  /** Set when the handler returned a promise: fails it early (timeout, cancel). */
  interrupt: ((error: JobsError) => void) | undefined
  /** Set when the shutdown deadline hands the job back. */
  handedBack: ShutdownDeadlineError | undefined
  /** Why the handler's `signal` is (or will be, once read) aborted: hand-back, timeout, cancel. */
  abortReason: JobsError | undefined
  /** `finishing` once the handler has settled (completing, failing or dead-lettering). */
  stage: 'preparing' | 'running' | 'finishing'
}

/** @internal A new flight for `job`. */
export function newFlight(job: Job): Flight {
  return {
    job,
    controller: undefined,
    handBack: undefined,
    interrupt: undefined,
    handedBack: undefined,
    abortReason: undefined,
    stage: 'preparing',
  }
}

/** @internal Aborts the flight's signal (now, or when the handler first reads it) with `reason`. */
export function abortFlight(flight: Flight, reason: JobsError): void {
  flight.abortReason ??= reason
  flight.controller?.abort(flight.abortReason)
}

/** @internal The handler's context; a class so the lazy getters and methods live on the prototype. */
export class HandlerContext implements JobContext {
  readonly id: string
  readonly name: string
  readonly queue: string
  readonly attempt: number
  readonly version: number
  readonly #flight: Flight

  constructor(flight: Flight, queue: string, resolved: Resolved) {
    this.#flight = flight
    this.id = String(flight.job.id)
    this.name = resolved.name
    this.queue = queue
    this.attempt = flight.job.attemptsMade + 1
    this.version = resolved.version
  }

  get signal(): AbortSignal {
    const flight = this.#flight
    flight.controller ??= new AbortController()
    if (flight.abortReason && !flight.controller.signal.aborted) flight.controller.abort(flight.abortReason)
    return flight.controller.signal
  }

  async progress(value: number | object): Promise<void> {
    await this.#flight.job.updateProgress(value)
  }

  async log(line: string): Promise<void> {
    await this.#flight.job.log(line)
  }

  async childrenValues<T = unknown>(): Promise<Record<string, T>> {
    return this.#flight.job.getChildrenValues<T>()
  }
}
