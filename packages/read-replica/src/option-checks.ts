import type { NodeInput } from './database-node.js'
import { ReadReplicaOptionsError } from './errors.js'

// Each check throws ReadReplicaOptionsError at construction, naming the option and what to pass, so
// a wrong option never surfaces as a raw TypeError or as a failure at the first query.

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`
  return typeof value
}

function isPool(value: unknown): boolean {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { connect?: unknown }).connect === 'function' &&
    typeof (value as { end?: unknown }).end === 'function'
  )
}

/** One host: a `pg.Pool` or `{ pool, name?, weight? }`. */
export function checkNode(value: unknown, option: string): NodeInput {
  if (isPool(value)) return value as NodeInput
  if (value !== null && typeof value === 'object' && 'pool' in value) {
    const config = value as { pool: unknown; name?: unknown; weight?: unknown }
    if (!isPool(config.pool)) {
      throw new ReadReplicaOptionsError(
        `option ${option}.pool must be a pg.Pool (new pg.Pool({ connectionString })), got ${describe(config.pool)}`,
        { option },
      )
    }
    if (config.name !== undefined && (typeof config.name !== 'string' || config.name === '')) {
      throw new ReadReplicaOptionsError(`option ${option}.name must be a non-empty string`, { option })
    }
    if (
      config.weight !== undefined &&
      (typeof config.weight !== 'number' || !Number.isFinite(config.weight) || config.weight < 0)
    ) {
      throw new ReadReplicaOptionsError(`option ${option}.weight must be a finite number >= 0`, { option })
    }
    return value as NodeInput
  }
  const hint =
    typeof value === 'string'
      ? ' (a connection string is not accepted: wrap it in new pg.Pool({ connectionString }))'
      : ''
  throw new ReadReplicaOptionsError(
    `option ${option} must be a pg.Pool or { pool, name?, weight? }, got ${describe(value)}${hint}`,
    { option },
  )
}

/** `primary`: one host or a non-empty array of them. */
export function checkPrimaries(value: unknown): NodeInput[] {
  if (value === undefined || value === null) {
    throw new ReadReplicaOptionsError(
      'option primary is required: a pg.Pool, { pool, name }, or an array of them',
      {
        option: 'primary',
      },
    )
  }
  if (!Array.isArray(value)) return [checkNode(value, 'primary')]
  if (value.length === 0) {
    throw new ReadReplicaOptionsError('option primary is an empty array: give at least one pg.Pool', {
      option: 'primary',
    })
  }
  return value.map((item, index) => checkNode(item, `primary[${index}]`))
}

/** `replicas`: an array of hosts (may be empty). */
export function checkReplicas(value: unknown): NodeInput[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) {
    throw new ReadReplicaOptionsError(
      `option replicas must be an array of pg.Pool or { pool }, got ${describe(value)}`,
      {
        option: 'replicas',
      },
    )
  }
  return value.map((item, index) => checkNode(item, `replicas[${index}]`))
}

export function checkOneOf<T extends string>(
  option: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T
  throw new ReadReplicaOptionsError(
    `option ${option} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`,
    { option },
  )
}

export function checkBoolean(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value === 'boolean') return value
  throw new ReadReplicaOptionsError(`option ${option} must be true or false, got ${describe(value)}`, {
    option,
  })
}

export function checkNumber(option: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new ReadReplicaOptionsError(
      `option ${option} must be a finite number >= ${min}, got ${String(value)}`,
      {
        option,
      },
    )
  }
  return value
}

export function checkSecret(value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string' && value.length > 0) return value
  throw new ReadReplicaOptionsError(
    `option tokenSecret must be a non-empty string (e.g. 32 random bytes as hex), got ${describe(value)}; leave it out to use unsigned tokens`,
    { option: 'tokenSecret' },
  )
}

export function checkNames(option: string, value: unknown): readonly string[] {
  if (value === undefined) return []
  if (Array.isArray(value) && value.every((name) => typeof name === 'string' && name.length > 0)) return value
  throw new ReadReplicaOptionsError(`option ${option} must be an array of function names (strings)`, {
    option,
  })
}

export function checkFunctionOption<T>(option: string, value: unknown, what: string): T | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'function') return value as T
  throw new ReadReplicaOptionsError(`option ${option} must be ${what}, got ${describe(value)}`, { option })
}

export function checkLogger<T>(value: unknown): T | undefined {
  if (value === undefined) return undefined
  const logger = value as { warn?: unknown; info?: unknown } | null
  if (
    logger !== null &&
    typeof logger === 'object' &&
    typeof logger.warn === 'function' &&
    typeof logger.info === 'function'
  )
    return value as T
  throw new ReadReplicaOptionsError(
    'option logger must be pino-compatible: an object with warn() and info()',
    {
      option: 'logger',
    },
  )
}

export function checkMetricsHook<T>(value: unknown): T | undefined {
  if (value === undefined) return undefined
  const hook = value as { increment?: unknown; observe?: unknown } | null
  const optionalFunction = (member: unknown) => member === undefined || typeof member === 'function'
  if (
    hook !== null &&
    typeof hook === 'object' &&
    optionalFunction(hook.increment) &&
    optionalFunction(hook.observe)
  )
    return value as T
  throw new ReadReplicaOptionsError(
    `option metrics must be an object with increment(name, labels, value) and/or observe(name, value, labels), got ${describe(value)}`,
    { option: 'metrics' },
  )
}
