import type { StandardSchemaV1 as Spec } from '@standard-schema/spec'

/**
 * @deprecated Import `StandardSchemaV1` from `@standard-schema/spec` (the package's own schema
 * type is now exactly that one). This alias goes away in the next minor.
 */
export type StandardSchemaV1<Input = unknown, Output = Input> = Spec<Input, Output>

/** @deprecated Use the `StandardSchemaV1` namespace of `@standard-schema/spec`. */
export declare namespace StandardSchemaV1 {
  export type Props<Input = unknown, Output = Input> = Spec.Props<Input, Output>
  export type Result<Output> = Spec.Result<Output>
  export type SuccessResult<Output> = Spec.SuccessResult<Output>
  export type FailureResult = Spec.FailureResult
  export type Issue = Spec.Issue
  export type PathSegment = Spec.PathSegment
  export type Types<Input = unknown, Output = Input> = Spec.Types<Input, Output>
  export type InferInput<Schema extends Spec> = Spec.InferInput<Schema>
  export type InferOutput<Schema extends Spec> = Spec.InferOutput<Schema>
}
