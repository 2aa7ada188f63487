import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { copyFile, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { dirname, extname, join, relative, resolve, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { CdnOptionsError, ManifestBuildError } from './errors.js'
import type { AssetManifest, ManifestEntry } from './manifest.js'

/** Options of {@link buildManifest}. */
export interface BuildManifestOptions {
  /** The directory of source assets. Read only. */
  inputDir: string
  /** Where fingerprinted copies and the manifest go. Must not be `inputDir` or inside it. */
  outputDir: string
  /**
   * File name of the manifest, inside `outputDir`.
   * @default 'manifest.json'
   */
  manifestFile?: string
  /**
   * Hex characters of the SHA-256 in a fingerprinted name (`app.3f9a1c2e.js`).
   * @default 8
   */
  hashLength?: number
  /**
   * Files hashed at once (file I/O overlaps, so more than the CPU count pays).
   * @default 16
   */
  concurrency?: number
  /**
   * Assets whose name must not change (linked from outside, fixed by a standard): copied under
   * their own name and versioned with `?v=<hash>` instead. Matched against the logical path.
   * @default [/(^|\/)(favicon\.ico|robots\.txt|sitemap\.xml|manifest\.webmanifest|sw\.js)$/, /\.html$/, /^\.well-known\//]
   */
  keepNames?: readonly RegExp[]
  /**
   * Write the copies (false: only compute the manifest).
   * @default true
   */
  write?: boolean
}

/** What {@link buildManifest} did. */
export interface BuildManifestResult {
  manifest: AssetManifest
  /** Absolute path of the manifest written (or that would be, with `write: false`). */
  manifestPath: string
  files: number
  bytes: number
  /** Entries under `inputDir` left out because they are not regular files: symbolic links (to files, to directories, dangling), sockets, FIFOs. */
  skipped: string[]
}

const DEFAULT_KEEP_NAMES = [
  /(^|\/)(favicon\.ico|robots\.txt|sitemap\.xml|manifest\.webmanifest|sw\.js)$/,
  /\.html$/,
  /^\.well-known\//,
]
const PRECOMPRESSED = /\.(br|gz)$/

/**
 * Every regular file under `dir`, and what is neither a file nor a directory (symbolic links,
 * sockets, FIFOs), as sorted paths relative to it with `/` separators. Links are not followed: a
 * link could pull in files from outside the asset directory, or loop.
 */
async function listFiles(dir: string): Promise<{ files: string[]; skipped: string[] }> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  const pathOf = (entry: (typeof entries)[number]) =>
    relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/')
  return {
    files: entries
      .filter((entry) => entry.isFile())
      .map(pathOf)
      .sort(),
    skipped: entries
      .filter((entry) => !entry.isFile() && !entry.isDirectory())
      .map(pathOf)
      .sort(),
  }
}

// Files up to this size are read once into memory, hashed and written from the same buffer (one
// read instead of two); bigger ones are hashed as a stream and copied, so memory stays flat.
const IN_MEMORY_LIMIT = 1024 * 1024

/** SHA-256 of a file, and its bytes when it is small enough to keep for the copy. */
async function hashFile(path: string): Promise<{ digest: Buffer; size: number; bytes?: Buffer }> {
  const { size } = await stat(path)
  if (size <= IN_MEMORY_LIMIT) {
    // readFile(path), not FileHandle#readFile: the latter reads in small chunks and is much slower.
    const bytes = await readFile(path)
    return { digest: createHash('sha256').update(bytes).digest(), size: bytes.length, bytes }
  }
  const hash = createHash('sha256')
  let streamed = 0
  await pipeline(createReadStream(path), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      streamed += chunk.length
      hash.update(chunk)
    }
  })
  return { digest: hash.digest(), size: streamed }
}

/** `js/app.js` + `3f9a1c2e` -> `js/app.3f9a1c2e.js` (a dotfile or extensionless name gets the hash at the end). */
export function fingerprintedName(path: string, hash: string): string {
  const ext = extname(path)
  return ext && !path.endsWith(`/${ext}`) && path !== ext
    ? `${path.slice(0, -ext.length)}.${hash}${ext}`
    : `${path}.${hash}`
}

/** Runs `task` over `items` with at most `limit` running at once; the first failure rejects. */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      await task(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/**
 * Hashes every file under `inputDir` (streaming, `concurrency` at a time), copies each to
 * `outputDir` under a fingerprinted name (`app.3f9a1c2e.js`), and writes a manifest that maps the
 * logical path to it. Precompressed siblings (`app.js.br`, `app.js.gz`) follow their file
 * (`app.3f9a1c2e.js.br`). The manifest is written last and atomically: a reader never sees one
 * that names a file not yet copied.
 *
 * @example
 * ```ts
 * import { buildManifest } from '@scale/cdn-url/manifest'
 * const { manifest } = await buildManifest({ inputDir: 'public', outputDir: 'dist/assets' })
 * ```
 */
export async function buildManifest(options: BuildManifestOptions): Promise<BuildManifestResult> {
  const inputDir = resolve(options.inputDir)
  const outputDir = resolve(options.outputDir)
  if (outputDir === inputDir || outputDir.startsWith(inputDir + sep)) {
    throw new CdnOptionsError(
      'outputDir',
      'must not be inputDir or inside it (a second run would fingerprint the copies)',
    )
  }
  const hashLength = options.hashLength ?? 8
  if (!Number.isInteger(hashLength) || hashLength < 6 || hashLength > 64) {
    throw new CdnOptionsError('hashLength', 'must be an integer from 6 to 64')
  }
  const concurrency = options.concurrency ?? 16
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new CdnOptionsError('concurrency', 'must be an integer ≥ 1')
  const keepNames = options.keepNames ?? DEFAULT_KEEP_NAMES
  const write = options.write ?? true
  const manifestPath = join(outputDir, options.manifestFile ?? 'manifest.json')

  let files: string[]
  let skipped: string[]
  try {
    ;({ files, skipped } = await listFiles(inputDir))
  } catch (cause) {
    throw new ManifestBuildError(inputDir, cause)
  }
  const present = new Set(files)
  const isSibling = (file: string) => PRECOMPRESSED.test(file) && present.has(file.replace(PRECOMPRESSED, ''))
  const assets = files.filter((file) => !isSibling(file))

  const entries = new Map<string, ManifestEntry>()
  let bytes = 0
  const createdDirs = new Set<string>()
  const copy = async (from: string, to: string, bytes?: Buffer): Promise<void> => {
    const target = join(outputDir, to)
    const dir = dirname(target)
    if (!createdDirs.has(dir)) {
      await mkdir(dir, { recursive: true })
      createdDirs.add(dir)
    }
    if (bytes) await writeFile(target, bytes)
    else await copyFile(join(inputDir, from), target)
  }

  await forEachLimited(assets, concurrency, async (path) => {
    try {
      const { digest, size, bytes: content } = await hashFile(join(inputDir, path))
      bytes += size
      const hash = digest.toString('hex').slice(0, hashLength)
      const versioned = keepNames.some((pattern) => pattern.test(path))
      const file = versioned ? path : fingerprintedName(path, hash)
      entries.set(path, {
        file,
        hash,
        ...(versioned ? { versioned: true } : {}),
        integrity: `sha256-${digest.toString('base64')}`,
        size,
      })
      if (!write) return
      await copy(path, file, content)
      for (const suffix of ['.br', '.gz']) {
        if (present.has(path + suffix)) await copy(path + suffix, file + suffix)
      }
    } catch (cause) {
      throw new ManifestBuildError(path, cause)
    }
  })

  // Sorted, so that the same input gives a byte-identical manifest.
  const manifest: AssetManifest = {
    version: 1,
    assets: Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : 1))),
  }
  if (write) {
    try {
      await mkdir(outputDir, { recursive: true })
      const temp = `${manifestPath}.${process.pid}.tmp`
      await writeFile(temp, `${JSON.stringify(manifest, null, 2)}\n`)
      await rename(temp, manifestPath)
    } catch (cause) {
      throw new ManifestBuildError(manifestPath, cause)
    }
  }
  return { manifest, manifestPath, files: entries.size, bytes, skipped }
}
