import { UnmergeableQueryError } from '../errors.js'

// Merging compares and adds the values `pg` hands back: numbers, strings (int8 and numeric come
// as strings), Dates, booleans. The Postgres type of each compared value travels with the rows
// (a hidden `pg_typeof(...)` column), so '10' and '9' compare as numbers when they are numbers
// and as text when they are text.

const NUMERIC = new Set(['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision', 'oid'])
const TEXT = new Set([
  'text',
  'character varying',
  'character',
  'name',
  '"char"',
  'citext',
  'uuid',
  'unknown',
])
const TIME = new Set(['timestamp without time zone', 'timestamp with time zone', 'date'])

interface Decimal {
  readonly special?: 'nan' | 'inf' | '-inf'
  readonly digits: bigint
  readonly scale: number
}

function parseDecimal(value: unknown): Decimal {
  if (typeof value === 'bigint') return { digits: value, scale: 0 }
  const text = typeof value === 'number' ? String(value) : String(value).trim()
  if (text === 'NaN') return { special: 'nan', digits: 0n, scale: 0 }
  if (text === 'Infinity') return { special: 'inf', digits: 0n, scale: 0 }
  if (text === '-Infinity') return { special: '-inf', digits: 0n, scale: 0 }
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i.exec(text)
  if (!match) throw new UnmergeableQueryError(`"${text}" is not a number`)
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match
  let digits = BigInt(`${whole}${fraction}` || '0')
  let scale = fraction.length - Number(exponent)
  if (scale < 0) {
    digits *= 10n ** BigInt(-scale)
    scale = 0
  }
  return { digits: sign === '-' ? -digits : digits, scale }
}

function align(a: Decimal, b: Decimal): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale)
  return [a.digits * 10n ** BigInt(scale - a.scale), b.digits * 10n ** BigInt(scale - b.scale), scale]
}

const SPECIAL_RANK = { '-inf': -1, inf: 1, nan: 2 } as const

/** Exact numeric order, as Postgres sorts numeric (NaN above everything). */
export function compareNumeric(left: unknown, right: unknown): number {
  if (
    typeof left === 'number' &&
    typeof right === 'number' &&
    Number.isFinite(left) &&
    Number.isFinite(right)
  )
    return left - right
  const a = parseDecimal(left)
  const b = parseDecimal(right)
  if (a.special || b.special) {
    const rank = (d: Decimal) => (d.special ? SPECIAL_RANK[d.special] : 0)
    return rank(a) - rank(b)
  }
  const [x, y] = align(a, b)
  return x < y ? -1 : x > y ? 1 : 0
}

function formatDecimal(digits: bigint, scale: number): string {
  const negative = digits < 0n
  const text = (negative ? -digits : digits).toString().padStart(scale + 1, '0')
  const body = scale === 0 ? text : `${text.slice(0, -scale)}.${text.slice(-scale)}`
  return negative ? `-${body}` : body
}

/** Adds two partial sums or counts exactly, keeping the type `pg` returned them in. */
export function addValues(left: unknown, right: unknown): unknown {
  if (left === null || left === undefined) return right
  if (right === null || right === undefined) return left
  if (typeof left === 'number' && typeof right === 'number') return left + right
  if (typeof left === 'bigint' && typeof right === 'bigint') return left + right
  const a = parseDecimal(left)
  const b = parseDecimal(right)
  if (a.special || b.special) {
    if (a.special === 'nan' || b.special === 'nan' || (a.special && b.special && a.special !== b.special))
      return 'NaN'
    return a.special === 'inf' || b.special === 'inf' ? 'Infinity' : '-Infinity'
  }
  const [x, y, scale] = align(a, b)
  return formatDecimal(x + y, scale)
}

function timeOf(value: unknown): number | string {
  return value instanceof Date ? value.getTime() : String(value)
}

/** Compares two non-null values of one Postgres type the way Postgres orders them. */
export function compareTyped(
  type: string,
  left: unknown,
  right: unknown,
  compareText: (a: string, b: string) => number,
): number {
  if (NUMERIC.has(type)) return compareNumeric(left, right)
  if (TEXT.has(type)) return compareText(String(left), String(right))
  if (type === 'boolean')
    return Number(left === true || left === 't') - Number(right === true || right === 't')
  if (TIME.has(type)) {
    const a = timeOf(left)
    const b = timeOf(right)
    return typeof a === 'number' && typeof b === 'number' ? a - b : compareText(String(a), String(b))
  }
  throw new UnmergeableQueryError(`values of type ${type} cannot be ordered outside Postgres`)
}

/**
 * A group key that is equal exactly for the values Postgres puts in one group. Each value is
 * tagged with its JavaScript type before JSON, which would turn NaN, ±Infinity, an infinite date
 * (`pg` gives ±Infinity or an invalid Date) and NULL all into `null`, merging their groups.
 */
export function groupKeyOf(values: readonly unknown[]): string {
  return JSON.stringify(values.map(groupPart))
}

function groupPart(value: unknown): unknown {
  if (value === null || value === undefined) return ['null']
  if (typeof value === 'number') return ['number', Object.is(value, -0) ? '0' : String(value)]
  if (typeof value === 'bigint') return ['bigint', String(value)]
  if (value instanceof Date) return ['date', String(value.getTime())]
  return ['value', value]
}
