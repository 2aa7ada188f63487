import { z } from 'zod'

const text = (max: number) => z.string().trim().min(1).max(max)

/** A user or photo ID in the URL: a positive 32-bit integer written in plain digits. */
export const idParam = z
  .string()
  .regex(/^[1-9][0-9]{0,9}$/, 'must be a positive integer')
  .transform(Number)
  .refine((n) => n <= 2_147_483_647, 'must fit in 32 bits')

export const addressInput = z.strictObject({
  streetAddress: text(200),
  city: text(100),
  state: z.string().regex(/^[A-Z]{2}$/, 'two capital letters'),
  postalCode: z.string().regex(/^[0-9]{5}$/, 'five digits'),
})

export const phoneNumberInput = z.strictObject({
  type: z.enum(['home', 'mobile', 'work']),
  number: z.string().regex(/^[0-9 +()-]{3,30}$/, 'digits, spaces and + ( ) - only'),
})

/** PUT /users/:id: the whole profile. Unknown fields are refused, not ignored. */
export const profileInput = z.strictObject({
  firstName: text(100),
  lastName: text(100),
  address: addressInput,
  phoneNumbers: z.array(phoneNumberInput).max(5),
})

/** PATCH /users/:id: any non-empty part of the profile. */
export const profilePatchInput = profileInput
  .partial()
  .refine((patch) => Object.keys(patch).length > 0, 'at least one field to change')

export const loginInput = z.strictObject({
  username: text(64),
  password: z.string().min(1).max(256),
})

export type ProfileInput = z.output<typeof profileInput>
export type ProfilePatch = z.output<typeof profilePatchInput>

/** A request the app refuses: answered with `status` and a JSON `{ error: { code, message, issues? } }`. */
export class HttpError extends Error {
  readonly status: number
  readonly code: string
  readonly issues: unknown
  constructor(status: number, code: string, message: string, issues?: unknown) {
    super(message)
    this.name = 'HttpError'
    this.status = status
    this.code = code
    this.issues = issues
  }
}

/** Parses `input` with `schema`, or throws a 400 `HttpError` listing every issue (path and message). */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const issues = result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }))
  throw new HttpError(400, 'E_INVALID_INPUT', `invalid ${what}`, issues)
}
