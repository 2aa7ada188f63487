import type { StandardSchemaV1 as Spec } from '@standard-schema/spec'

/**
 * @deprecated Import `StandardSchemaV1` from `@standard-schema/spec`: the schema type of
 * `fields` is now exactly that one (Zod ≥ 3.24, Valibot ≥ 1, ArkType implement it). This alias
 * goes away in the next minor.
 */
export type StandardSchemaV1<Input = unknown, Output = Input> = Spec<Input, Output>

/** The output type of a Standard Schema. */
export type InferOutput<Schema> = Schema extends Spec<unknown, infer Output> ? Output : never

/** Session data typed from a `fields` map of schemas. */
export type DataOf<Fields extends Record<string, Spec>> = {
  [Key in keyof Fields]: InferOutput<Fields[Key]>
}
