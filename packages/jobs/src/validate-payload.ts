import type { StandardSchemaV1 } from '@standard-schema/spec'
import type { AnyJobDefinition } from './define-job.js'
import {
  errorMessage,
  InvalidPayloadError,
  MissingMigrationError,
  type PayloadIssue,
  UnsupportedVersionError,
} from './errors.js'

function pathOf(issue: StandardSchemaV1.Issue): string {
  if (!issue.path) return ''
  return issue.path.map((segment) => String(typeof segment === 'object' ? segment.key : segment)).join('.')
}

function outputOf(
  job: AnyJobDefinition,
  phase: 'enqueue' | 'run',
  result: StandardSchemaV1.Result<unknown>,
): unknown {
  if (result.issues) {
    const issues: PayloadIssue[] = result.issues.map((issue) => ({
      path: pathOf(issue),
      message: issue.message,
    }))
    throw new InvalidPayloadError(job.name, phase, issues)
  }
  return result.value
}

/**
 * Runs the definition's schema; returns the validated output or throws {@link InvalidPayloadError}
 * naming every bad field. Synchronous when the validator is (zod, valibot, arktype usually are):
 * this runs once per job on the hot path, and a needless await there costs measurable throughput.
 */
export function validatePayload(job: AnyJobDefinition, payload: unknown, phase: 'enqueue' | 'run'): unknown {
  const result = job.schema['~standard'].validate(payload)
  if (result instanceof Promise) return result.then((settled) => outputOf(job, phase, settled))
  return outputOf(job, phase, result)
}

/**
 * Encodes `payload` as BullMQ stores it (JSON) and decodes it again: the value a worker will read.
 * Throws {@link InvalidPayloadError} for what JSON cannot carry at all (BigInt, circular
 * references, a throwing `toJSON`, a top-level `undefined` or function): retrying cannot fix those.
 */
export function decodedPayload(job: AnyJobDefinition, payload: unknown): unknown {
  let text: string | undefined
  try {
    text = JSON.stringify(payload)
  } catch (error) {
    throw new InvalidPayloadError(job.name, 'enqueue', [
      { path: '', message: `cannot be stored as JSON: ${errorMessage(error)}` },
    ])
  }
  if (text === undefined) {
    throw new InvalidPayloadError(job.name, 'enqueue', [
      { path: '', message: `a payload of type ${typeof payload} cannot be stored as JSON` },
    ])
  }
  return JSON.parse(text)
}

/** Issues of the decoded form, each marked as found after JSON encoding (the raw value passed). */
function afterEncoding(error: InvalidPayloadError, job: AnyJobDefinition): InvalidPayloadError {
  return new InvalidPayloadError(
    job.name,
    'enqueue',
    error.issues.map((issue) => ({
      path: issue.path,
      message: `${issue.message} (after JSON encoding, which is what the worker receives: Dates become strings, undefined and functions vanish; use z.coerce.date() or ISO strings)`,
    })),
  )
}

function explain(job: AnyJobDefinition, payload: unknown, error: unknown): never {
  if (!(error instanceof InvalidPayloadError)) throw error
  // Only on the failure path: does the value as given pass? Then JSON changed its meaning.
  let rawPasses = false
  try {
    const raw = job.schema['~standard'].validate(payload)
    rawPasses = !(raw instanceof Promise) && raw.issues === undefined
  } catch {}
  throw rawPasses ? afterEncoding(error, job) : error
}

/**
 * The check at enqueue: validates the payload **as the worker will receive it** (encode to JSON,
 * decode, validate), so whatever is accepted here passes the same check before its handler runs.
 * Returns the decoded value, the one to store. Synchronous when the validator is.
 */
export function validateForEnqueue(job: AnyJobDefinition, payload: unknown): unknown {
  if (!job.validate) return payload
  const decoded = decodedPayload(job, payload)
  let checked: unknown
  try {
    checked = validatePayload(job, decoded, 'enqueue')
  } catch (error) {
    explain(job, payload, error)
  }
  if (checked instanceof Promise) {
    return checked.then(
      () => decoded,
      (error: unknown) => explain(job, payload, error),
    )
  }
  return decoded
}

/** Upgrades a stored payload from `version` to the definition's version with its migrations. */
export function migratePayload(job: AnyJobDefinition, version: number, payload: unknown): unknown {
  if (version > job.version) throw new UnsupportedVersionError(job.name, version, job.version)
  let current = payload
  for (let v = version; v < job.version; v++) {
    const migrate = job.migrations[v]
    if (!migrate) throw new MissingMigrationError(job.name, v)
    current = migrate(current)
  }
  return current
}
