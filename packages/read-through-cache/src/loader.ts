/** What a loader is told about the call it serves. */
export interface LoaderContext<T> {
  key: string
  /** The stale value being refreshed, if any. */
  stale: T | undefined
  /**
   * Aborted when the load is given up (`loaderHardTimeoutMs`), with a `CacheLoaderTimeoutError` as
   * its reason. Pass it to your query (`pg`, `fetch`...) so the work stops too.
   */
  signal: AbortSignal
  /**
   * Adaptive caching: the TTL of this load's entry, decided from what was loaded (a draft for a
   * minute, a published post for a day). Overrides `ttlMs` for this entry only.
   */
  setTtl(ttlMs: number): void
  /**
   * Adaptive tagging: tags of this entry decided from what was loaded (a post's author, its
   * topics), added to the call's `tags`. `deleteByTag` of such a tag still never leaves a stale
   * value: a load is undone if the tag was invalidated after the load started (judged by
   * clocks, with a 1 s margin: see the README's guarantees).
   */
  setTags(tags: readonly string[]): void
  /**
   * Do not cache what this load returns (the callers of this load still get it); returns
   * `undefined` so a loader can `return ctx.skip()`. Callers that waited on this load's lease in
   * other processes then load for themselves.
   */
  skip(): undefined
  /**
   * Fails this load (as a throw would): callers get a stale value within the grace period if there
   * is one, otherwise an `Error` with this message.
   */
  fail(message?: string): never
}

/** What a batch loader is told about its call. */
export interface BatchLoaderContext {
  /** As `LoaderContext.signal`, for the whole batch. */
  signal: AbortSignal
}

/** Loads a value from the source of truth. Return `undefined` for "not found" (cached only with `negativeTtlMs`). */
export type Loader<T> = (context: LoaderContext<T>) => T | Promise<T>

/** Loads many keys at once: a `Map` keyed by the requested keys, or an array in the same order. Missing keys: not found. */
export type BatchLoader<T> = (
  keys: string[],
  context: BatchLoaderContext,
) => Promise<Map<string, T> | readonly (T | undefined)[]>
