import { readFile } from 'node:fs/promises'
import { CdnUrlError, ManifestInvalidError } from './errors.js'
import { assertSafePath } from './path-encoding.js'

/** One asset of a manifest, under its logical path (`js/app.js`). */
export interface ManifestEntry {
  /** The file to request, relative to the asset root: fingerprinted (`js/app.3f9a1c2e.js`) or, for a versioned asset, the logical path itself. */
  file: string
  /** Content hash (hex prefix of the SHA-256), or the hash the bundler put in the name. */
  hash: string
  /** `true`: the name cannot change (favicon.ico, robots.txt, ...), so URLs carry `?v=<hash>` instead. */
  versioned?: boolean
  /** Subresource integrity (`sha256-...`), when this package built the manifest. */
  integrity?: string
  /** Size in bytes, when this package built the manifest. */
  size?: number
}

/** The manifest `buildManifest` writes and `createCdn` reads. */
export interface AssetManifest {
  version: 1
  /** By logical path, without a leading slash. */
  assets: Record<string, ManifestEntry>
}

/** Strips the leading slash, an absolute URL's origin, and `./`: `/static/a.js` -> `static/a.js`. */
function relative(file: string): string {
  let path = file
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) path = new URL(path).pathname
  return path.replace(/^(\.\/|\/)+/, '')
}

/**
 * A manifest path made relative, refused if it would leave the asset root (`..`, `.`, backslash,
 * NUL) or is empty: a manifest is build output, and a bad one should fail at start-up, not per URL.
 */
function safeRelative(file: string, source: string, entry: string): string {
  const path = relative(file)
  try {
    if (path === '') throw new ManifestInvalidError(source, `entry "${entry}" names an empty path`)
    assertSafePath(path)
  } catch (cause) {
    if (cause instanceof ManifestInvalidError) throw cause
    const reason = cause instanceof CdnUrlError ? cause.message : String(cause)
    throw new ManifestInvalidError(source, `entry "${entry}" leaves the asset root: ${reason}`, cause)
  }
  return path
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text)
  } catch (cause) {
    throw new ManifestInvalidError(source, 'is not valid JSON', cause)
  }
}

// Vite: `name-<8 base64url chars>.ext`; webpack: `name.<hex>.ext`. Only used to fill `hash`.
function hashInName(file: string): string {
  return /[.-]([A-Za-z0-9_-]{6,})\.[^./]+$/.exec(file)?.[1] ?? ''
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Reads a manifest in any of the three shapes this package knows and returns it in its own:
 * its own (`{ version: 1, assets }`), Vite's (`build.manifest`: `{ "src/main.ts": { file, css } }`),
 * or webpack-manifest-plugin's (`{ "main.js": "/static/main.1a2b3c.js" }`). Takes the parsed
 * object or the JSON text; refuses an entry whose path would leave the asset root.
 */
export function parseManifest(manifest: unknown, source = 'manifest'): AssetManifest {
  const json = typeof manifest === 'string' ? parseJson(manifest, source) : manifest
  if (!isRecord(json)) throw new ManifestInvalidError(source, 'is not a JSON object')
  if (json.version === 1 && isRecord(json.assets)) {
    const assets: Record<string, ManifestEntry> = {}
    for (const [key, entry] of Object.entries(json.assets)) {
      if (!isRecord(entry) || typeof entry.file !== 'string' || typeof entry.hash !== 'string') {
        throw new ManifestInvalidError(source, `entry "${key}" needs string "file" and "hash"`)
      }
      const file = safeRelative(entry.file, source, key)
      assets[safeRelative(key, source, key)] = { ...(entry as unknown as ManifestEntry), file }
    }
    return { version: 1, assets }
  }
  const assets: Record<string, ManifestEntry> = {}
  for (const [key, value] of Object.entries(json)) {
    if (typeof value === 'string') {
      // webpack-manifest-plugin
      assets[safeRelative(key, source, key)] = {
        file: safeRelative(value, source, key),
        hash: hashInName(value),
      }
    } else if (isRecord(value) && typeof value.file === 'string') {
      // Vite: the entry's own file, and the CSS it pulls in under the CSS file's own name.
      const file = safeRelative(value.file, source, key)
      assets[safeRelative(key, source, key)] = { file, hash: hashInName(value.file) }
      for (const css of Array.isArray(value.css) ? value.css : []) {
        if (typeof css !== 'string') continue
        const cssFile = safeRelative(css, source, key)
        assets[cssFile] ??= { file: cssFile, hash: hashInName(css) }
      }
    } else {
      throw new ManifestInvalidError(source, `entry "${key}" is neither ours, Vite's nor webpack's`)
    }
  }
  return { version: 1, assets }
}

/** Reads and parses a manifest file (ours, Vite's or webpack's). */
export async function readManifest(file: string): Promise<AssetManifest> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    throw new ManifestInvalidError(file, 'cannot be read', cause)
  }
  return parseManifest(text, file)
}
