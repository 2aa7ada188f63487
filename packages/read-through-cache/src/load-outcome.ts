import { CacheRemoteLoadError } from './errors.js'

/**
 * What a lease holder that stored nothing leaves for the callers that waited on its lease, so
 * they take its answer instead of taking the lease in turn and loading the same nothing again:
 * `n` (the loader found nothing, and negative caching is off) or `e` + JSON of the error's name,
 * message and code (the loader threw, timed out, or its value could not be serialized).
 */
export type LoadOutcome = { kind: 'missing' } | { kind: 'error'; error: RemoteErrorSummary }

/** The parts of an error that travel to the waiting processes. */
export interface RemoteErrorSummary {
  name: string
  message: string
  code: string | undefined
}

export function encodeOutcome(outcome: LoadOutcome): string {
  return outcome.kind === 'missing' ? 'n' : `e${JSON.stringify(outcome.error)}`
}

/** The error as it travels: never the stack or the cause (they may hold data the waiters should not get). */
export function summarizeError(error: unknown): RemoteErrorSummary {
  const e = error as { name?: unknown; message?: unknown; code?: unknown } | undefined
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(error),
    code: typeof e?.code === 'string' ? e.code : undefined,
  }
}

/** `undefined` (the value) for a missing key; the waiter's error for a failed load. */
export function outcomeResult(
  key: string,
  text: string | undefined,
): { error: CacheRemoteLoadError } | undefined {
  if (text === undefined || !text.startsWith('e')) return undefined
  let summary: RemoteErrorSummary
  try {
    summary = summarizeError(JSON.parse(text.slice(1)))
  } catch {
    summary = { name: 'Error', message: 'unreadable outcome', code: undefined }
  }
  return { error: new CacheRemoteLoadError(key, summary) }
}
