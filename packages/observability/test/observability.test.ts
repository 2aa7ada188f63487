import { describe, expect, it } from 'vitest'
import { type Logger, type MetricsHook, Observability, silentLogger } from '../src/index.js'

function recordingLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = []
  return { logger: { ...silentLogger, warn: (_object, message) => warnings.push(message) }, warnings }
}

describe('Observability', () => {
  it('passes samples to the hook, value 1 by default', () => {
    const seen: unknown[] = []
    const hook: MetricsHook = {
      increment: (name, labels, value) => seen.push(['inc', name, labels, value]),
      observe: (name, value, labels) => seen.push(['obs', name, value, labels]),
    }
    const obs = new Observability(undefined, hook, '@scale/x')
    obs.increment('a_total', { k: 'v' })
    obs.increment('a_total', undefined, 3)
    obs.observe('b_ms', 12, { k: 'w' })
    expect(seen).toEqual([
      ['inc', 'a_total', { k: 'v' }, 1],
      ['inc', 'a_total', undefined, 3],
      ['obs', 'b_ms', 12, { k: 'w' }],
    ])
    expect(obs.enabled).toBe(true)
    expect(obs.observes).toBe(true)
  })

  it('a hook that throws breaks no call and is logged once, naming the package', () => {
    const { logger, warnings } = recordingLogger()
    const hook: MetricsHook = {
      increment: () => {
        throw new Error('boom')
      },
      observe: () => {
        throw new Error('boom')
      },
    }
    const obs = new Observability(logger, hook, '@scale/x')
    expect(() => {
      obs.increment('a_total')
      obs.observe('b_ms', 1)
      obs.increment('a_total')
    }).not.toThrow()
    expect(warnings).toEqual(['[@scale/x] the metrics hook threw; ignored (logged once)'])
    expect(obs.logger).toBe(logger)
  })

  it('without a hook or logger does nothing and stays silent', () => {
    const obs = new Observability(undefined, {}, '@scale/x')
    obs.increment('a_total')
    obs.observe('b_ms', 1)
    expect(obs.observes).toBe(false)
    expect(new Observability(undefined, undefined, '@scale/x').enabled).toBe(false)
    expect(obs.logger).toBe(silentLogger)
  })
})
