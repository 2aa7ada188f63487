import { describe, expect, it } from 'vitest'
import { ScaleError } from '../src/index.js'

type DemoCode = 'E_DEMO_BROKEN' | 'E_DEMO_CLOSED'

class DemoError extends ScaleError<DemoCode> {
  constructor(
    code: DemoCode,
    message: string,
    options: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super('@scale/demo', code, message, options)
  }
}
class DemoClosedError extends DemoError {
  constructor(method: string) {
    super('E_DEMO_CLOSED', `${method}() after close()`, { context: { method } })
  }
}

describe('ScaleError', () => {
  it('carries code, a frozen copy of context, cause, the concrete class name and the package prefix', () => {
    const cause = new Error('socket hang up')
    const context = { key: 'k1' }
    const error = new DemoError('E_DEMO_BROKEN', 'the thing broke', { cause, context })
    context.key = 'changed'
    expect(error).toBeInstanceOf(Error)
    expect(error).toBeInstanceOf(ScaleError)
    expect(error.code).toBe('E_DEMO_BROKEN')
    expect(error.context).toEqual({ key: 'k1' })
    expect(Object.isFrozen(error.context)).toBe(true)
    expect(error.cause).toBe(cause)
    expect(error.name).toBe('DemoError')
    expect(error.message).toBe('[@scale/demo] the thing broke')
  })

  it('names the subclass and has no cause property when none was given', () => {
    const error = new DemoClosedError('get')
    expect(error).toBeInstanceOf(DemoError)
    expect(error.name).toBe('DemoClosedError')
    expect(error.context).toEqual({ method: 'get' })
    expect('cause' in error).toBe(false)
  })
})
