/**
 * What is stored under a value key: `<freshUntil>|<staleUntil>|<kind><payload>`.
 *
 * The fresh-until timestamp comes first so the get-or-lease Lua script can read it with one
 * `string.match` and decide, inside Redis, whether a refresh lease is needed; a JSON envelope
 * would cost a cjson decode of the whole value on every read.
 */
export interface Envelope {
  /** Epoch ms until which the value is fresh. */
  freshUntil: number
  /** Epoch ms until which the value may still be served stale (SWR and grace); Redis expires it then. */
  staleUntil: number
  /** `true` for a cached "not found" (negative caching). */
  negative: boolean
  /** The serialized value (empty for a negative entry). */
  payload: string
}

export function encodeEnvelope(envelope: Envelope): string {
  return `${envelope.freshUntil}|${envelope.staleUntil}|${envelope.negative ? 'n' : 'v'}${envelope.payload}`
}

/** Returns `undefined` for text this package did not write (treated as a miss, never thrown). */
export function decodeEnvelope(text: string): Envelope | undefined {
  const first = text.indexOf('|')
  const second = first < 0 ? -1 : text.indexOf('|', first + 1)
  if (second < 0) return undefined
  const freshUntil = Number(text.slice(0, first))
  const staleUntil = Number(text.slice(first + 1, second))
  const kind = text.charCodeAt(second + 1)
  if (!Number.isFinite(freshUntil) || !Number.isFinite(staleUntil)) return undefined
  if (kind !== 110 && kind !== 118) return undefined // 'n' | 'v'
  return { freshUntil, staleUntil, negative: kind === 110, payload: text.slice(second + 2) }
}
