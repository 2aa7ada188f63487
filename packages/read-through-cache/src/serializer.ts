/** Turns values into the strings stored in Redis and back. */
export interface Serializer {
  serialize(value: unknown): string
  deserialize(text: string): unknown
}

/** Plain `JSON.stringify` / `JSON.parse`: Dates come back as strings, Map and Set as `{}`, `BigInt` throws. */
export const jsonSerializer: Serializer = {
  serialize: (value) => JSON.stringify(value),
  deserialize: (text) => JSON.parse(text),
}

/** Marks a text that holds typed values; plain JSON never starts with it. */
const TYPED_MARK = '~'
const TYPED_MARK_CODE = 126
/** The property that tags an encoded Date, Map, Set, BigInt (or an object that has this key itself). */
const TAG = '\u0000t'

type Tagged = { [TAG]: 'D' | 'M' | 'S' | 'B' | 'O'; v: unknown }

function revive(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value
  const tagged = value as Partial<Tagged>
  switch (tagged[TAG]) {
    case 'D':
      return new Date(typeof tagged.v === 'number' ? tagged.v : Number.NaN)
    case 'M':
      return new Map(tagged.v as [unknown, unknown][])
    case 'S':
      return new Set(tagged.v as unknown[])
    case 'B':
      return BigInt(tagged.v as string)
    case 'O':
      return Object.fromEntries(tagged.v as [string, unknown][])
    default:
      return value
  }
}

/**
 * The default: JSON that keeps `Date`, `Map`, `Set` and `BigInt` (nested anywhere), so every caller
 * gets the same types whether its value came from its own loader, the local tier or Redis. A value
 * without such types is stored as plain JSON and read back with a plain `JSON.parse` (no reviver
 * on the hot path); one with them is marked and read back with a reviver. Class instances still
 * come back as plain objects, functions and symbols are dropped, as with JSON.
 */
export const typedJsonSerializer: Serializer = {
  serialize(value) {
    let typed = false
    const text = JSON.stringify(value, function (this: Record<string, unknown>, key, encoded: unknown) {
      // `encoded` went through toJSON already (a Date is a string by now): look at the original.
      const raw = this[key]
      if (typeof raw === 'bigint') {
        typed = true
        return { [TAG]: 'B', v: raw.toString() }
      }
      if (typeof raw !== 'object' || raw === null) return encoded
      if (raw instanceof Date) {
        typed = true
        const time = raw.getTime()
        return { [TAG]: 'D', v: Number.isNaN(time) ? null : time }
      }
      if (raw instanceof Map) {
        typed = true
        return { [TAG]: 'M', v: [...raw] }
      }
      if (raw instanceof Set) {
        typed = true
        return { [TAG]: 'S', v: [...raw] }
      }
      if (
        encoded !== null &&
        typeof encoded === 'object' &&
        !Array.isArray(encoded) &&
        Object.hasOwn(encoded, TAG)
      ) {
        // An object that happens to carry the tag key itself: as entries, so it is not read as a tag.
        typed = true
        return { [TAG]: 'O', v: Object.entries(encoded) }
      }
      return encoded
    })
    return typed ? TYPED_MARK + text : text
  },
  deserialize(text) {
    return text.charCodeAt(0) === TYPED_MARK_CODE ? JSON.parse(text.slice(1), revive) : JSON.parse(text)
  },
}
