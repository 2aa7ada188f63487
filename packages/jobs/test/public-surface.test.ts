import { describe, expect, it } from 'vitest'
import * as api from '../src/index.js'

describe('public surface', () => {
  it('exports the public API only (internal helpers are not exported; old names stay for one minor)', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        // factories and helpers
        'createDeadLetterQueue',
        'createOutbox',
        'createOutboxRelay',
        'createProducer',
        'createScalingSignal',
        'createWorker',
        'defineJob',
        'flowJob',
        'promClientMetrics',
        'registerScalingMetrics',
        'shutdownOnSignal',
        'suggestWorkers',
        // errors
        'DeadLetterNotFoundError',
        'EnqueueError',
        'EnqueueTimeoutError',
        'InvalidPayloadError',
        'JobCancelledError',
        'JobsClosedError',
        'JobsError',
        'JobsOptionsError',
        'JobTimeoutError',
        'MissingMigrationError',
        'OutboxRelayError',
        'PermanentError',
        'ShutdownDeadlineError',
        'UnknownJobError',
        'UnsupportedVersionError',
        // deprecated, removed in the next minor
        'DEFAULT_OUTBOX_TABLE',
        'DEFAULT_PREFIX',
        'InvalidOptionsError',
        'versionedJobName',
      ].sort(),
    )
    expect(api.InvalidOptionsError).toBe(api.JobsOptionsError)
    expect(api.DEFAULT_PREFIX).toBe('{jobs}')
    expect(api.versionedJobName('resize', 2)).toBe('resize@v2')
  })
})
