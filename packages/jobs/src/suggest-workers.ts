/** The inputs of {@link suggestWorkers}. */
export interface SuggestWorkersInput {
  /** Jobs ready to run now: waiting, prioritized and due delayed ones. */
  readonly backlog: number
  /** Jobs running now. */
  readonly active: number
  /** Jobs arriving per second. */
  readonly arrivalRate: number
  /** Mean handler time in seconds. */
  readonly jobSeconds: number
  /** Concurrency of one worker process. */
  readonly concurrencyPerWorker: number
  /** Drain the backlog within this many seconds. */
  readonly targetDrainSeconds: number
  readonly minWorkers: number
  readonly maxWorkers: number
}

/**
 * Workers needed = workers to keep up with arrivals (Little's law: arrival rate × job time ÷
 * concurrency), or at least those busy now, plus workers to drain the backlog within the target.
 * Pure, so an autoscaler (KEDA, HPA external metric, a script) can apply it to its own numbers.
 */
export function suggestWorkers(input: SuggestWorkersInput): number {
  const jobSeconds = Math.max(input.jobSeconds, 0.001)
  const perWorkerRate = input.concurrencyPerWorker / jobSeconds
  const steady = Math.max(input.active / input.concurrencyPerWorker, input.arrivalRate / perWorkerRate)
  const drain = input.backlog / (perWorkerRate * Math.max(input.targetDrainSeconds, 0.001))
  const needed = Math.ceil(steady + drain - 1e-9)
  return Math.min(input.maxWorkers, Math.max(input.minWorkers, needed))
}
