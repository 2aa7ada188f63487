/** Turns values into the strings stored in Redis and back. */
export interface Serializer {
  serialize(value: unknown): string
  deserialize(text: string): unknown
}

/** `JSON.stringify` / `JSON.parse`: the default. Dates come back as strings, `BigInt` throws. */
export const jsonSerializer: Serializer = {
  serialize: (value) => JSON.stringify(value),
  deserialize: (text) => JSON.parse(text),
}
