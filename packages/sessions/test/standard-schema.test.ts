import type { StandardSchemaV1 as Spec } from '@standard-schema/spec'
import { describe, expectTypeOf, it } from 'vitest'
import type { z } from 'zod'
import type { DataOf, StandardSchemaV1 } from '../src/index.js'

// Checked by `tsc` (the package's typecheck), not at run time: a wrong type fails the build.
describe('schema type of fields', () => {
  it("the deprecated StandardSchemaV1 export is @standard-schema/spec's own type", () => {
    expectTypeOf<StandardSchemaV1<string, number>>().toEqualTypeOf<Spec<string, number>>()
  })

  it('session data is typed from Standard Schemas such as zod', () => {
    expectTypeOf<DataOf<{ cart: z.ZodArray<z.ZodString> }>>().toEqualTypeOf<{ cart: string[] }>()
  })
})
