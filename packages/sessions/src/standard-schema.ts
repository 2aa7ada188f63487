/**
 * The subset of the Standard Schema v1 interface (https://standardschema.dev) this package reads.
 * Zod ≥ 3.24, Valibot ≥ 1 and ArkType implement it, so any of them can type a session field
 * without this package depending on one.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1
    readonly vendor: string
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>
    readonly types?: { readonly input: Input; readonly output: Output } | undefined
  }
}

export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: readonly { readonly message: string }[] }

/** The output type of a Standard Schema. */
export type InferOutput<Schema> = Schema extends StandardSchemaV1<unknown, infer Output> ? Output : never

/** Session data typed from a `fields` map of schemas. */
export type DataOf<Fields extends Record<string, StandardSchemaV1>> = {
  [Key in keyof Fields]: InferOutput<Fields[Key]>
}
