import type { AnyJobDefinition } from './define-job.js'
import {
  InvalidPayloadError,
  MissingMigrationError,
  type PayloadIssue,
  UnsupportedVersionError,
} from './errors.js'
import type { StandardSchemaV1 } from './standard-schema.js'

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
