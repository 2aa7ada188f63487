/**
 * Names the package exported before its public surface was trimmed to the public API. Kept for
 * one minor version so that imports keep working; each says what to use instead.
 */
import { DEFAULT_PREFIX as defaultKeyPrefix } from './connection.js'
import { versionedJobName as bullJobName } from './define-job.js'
import { DEFAULT_OUTBOX_TABLE as defaultOutboxTable } from './outbox.js'

/** @deprecated internal: the default `keyPrefix` is `'{jobs}'`; removed in the next minor */
export const DEFAULT_PREFIX: string = defaultKeyPrefix

/** @deprecated internal: the default outbox `table` is `'scale_jobs_outbox'`; removed in the next minor */
export const DEFAULT_OUTBOX_TABLE: string = defaultOutboxTable

/** @deprecated internal: the BullMQ job name of a job and version (`name@vN`); removed in the next minor */
export const versionedJobName: (name: string, version: number) => string = bullJobName
