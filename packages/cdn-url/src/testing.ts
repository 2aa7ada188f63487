import { PurgeAdapterNonConformantError } from './errors.js'
import type { PurgeAdapter } from './purge.js'

/** What the conformance suite needs from your edge to watch purges take effect. */
export interface PurgeConformanceOptions {
  /** The adapter under test, pointed at a real (or test) cache. */
  adapter: PurgeAdapter
  /**
   * A fresh cacheable asset on the edge, tagged with the given surrogate key (so the suite can
   * purge it by key). Each call must return a URL never seen before.
   */
  newAsset(key: string): Promise<string>
  /** Requests `url` through the edge; resolves whether the edge served it from cache. The request may cache it. */
  isCached(url: string): Promise<boolean>
}

async function expectCached(options: PurgeConformanceOptions, url: string, cached: boolean, step: string) {
  const actual = await options.isCached(url)
  if (actual !== cached) {
    throw new PurgeAdapterNonConformantError(
      options.adapter.name,
      `${step}: expected ${url} to be ${cached ? 'cached' : 'purged'}`,
    )
  }
}

const signal = () => AbortSignal.timeout(30_000)

/**
 * The behaviour every {@link PurgeAdapter} must have, checked against a real edge: purging one
 * URL drops it and nothing else, a full batch drops every URL in it, purging by key drops what
 * carries the key and nothing else (when the adapter purges by key), and an aborted signal rejects.
 * Throws an `Error` naming the first broken rule; call it inside one test.
 *
 * @example
 * ```ts
 * import { checkPurgeAdapter } from '@scale/cdn-url/testing'
 * it('my adapter conforms', () => checkPurgeAdapter({ adapter, newAsset, isCached }))
 * ```
 */
export async function checkPurgeAdapter(options: PurgeConformanceOptions): Promise<void> {
  const { adapter } = options
  const run = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
  if (typeof adapter.name !== 'string' || adapter.name === '')
    throw new PurgeAdapterNonConformantError(String(adapter.name), 'name must be a non-empty string')
  if (!Number.isInteger(adapter.maxBatch?.urls) || adapter.maxBatch.urls < 1) {
    throw new PurgeAdapterNonConformantError(adapter.name, 'maxBatch.urls must be an integer ≥ 1')
  }
  if (!adapter.purgeUrls) throw new PurgeAdapterNonConformantError(adapter.name, 'purgeUrls is required')

  // Warm two assets; purge one: only that one misses.
  const [a, b] = [await options.newAsset(`${run}-a`), await options.newAsset(`${run}-b`)]
  for (const url of [a, b]) {
    await options.isCached(url)
    await expectCached(options, url, true, 'warming')
  }
  await adapter.purgeUrls([a], signal())
  await expectCached(options, a, false, 'purgeUrls([a])')
  await expectCached(options, b, true, 'purgeUrls([a]) must leave b')

  // A full batch.
  const batch: string[] = []
  for (let i = 0; i < Math.min(adapter.maxBatch.urls, 5); i++)
    batch.push(await options.newAsset(`${run}-batch`))
  for (const url of batch) await options.isCached(url)
  await adapter.purgeUrls(batch, signal())
  for (const url of batch) await expectCached(options, url, false, 'purgeUrls(batch)')

  // By key, when supported.
  if (adapter.purgeKeys) {
    if (!Number.isInteger(adapter.maxBatch.keys) || adapter.maxBatch.keys < 1) {
      throw new PurgeAdapterNonConformantError(
        adapter.name,
        'maxBatch.keys must be ≥ 1 when purgeKeys exists',
      )
    }
    const [tagged, other] = [await options.newAsset(`${run}-k1`), await options.newAsset(`${run}-k2`)]
    for (const url of [tagged, other]) await options.isCached(url)
    await adapter.purgeKeys([`${run}-k1`], signal())
    await expectCached(options, tagged, false, 'purgeKeys([k1])')
    await expectCached(options, other, true, 'purgeKeys([k1]) must leave what carries k2')
  }

  // An aborted signal: the adapter must give up, not purge regardless and resolve.
  const aborted = AbortSignal.abort()
  const outcome = await adapter.purgeUrls([a], aborted).then(
    () => 'resolved',
    () => 'rejected',
  )
  if (outcome !== 'rejected')
    throw new PurgeAdapterNonConformantError(adapter.name, 'purgeUrls must reject on an aborted signal')
}
