/**
 * PostgreSQL WAL positions (`pg_lsn`, text form `16/B374D848`) as bigint, so they compare and
 * subtract exactly (a number would lose precision past 2^53 bytes of WAL).
 */
export type Lsn = bigint

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/

/** Parses `X/Y`; returns undefined for null or anything that is not an LSN. */
export function parseLsn(text: unknown): Lsn | undefined {
  if (typeof text !== 'string') return undefined
  const match = LSN_TEXT.exec(text)
  if (!match) return undefined
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)
}

/** Formats an LSN the way PostgreSQL prints it. */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}

export function maxLsn(a: Lsn | undefined, b: Lsn | undefined): Lsn | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return a > b ? a : b
}
