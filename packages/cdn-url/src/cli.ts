#!/usr/bin/env node
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { CdnUrlError } from './errors.js'
import { buildManifest } from './manifest-builder.js'

const USAGE = `Usage: cdn-url build <inputDir> <outputDir> [--manifest manifest.json] [--hash-length 8] [--concurrency N] [--keep-name REGEX]...

Hashes every file under <inputDir>, copies it to <outputDir> under a fingerprinted name
(app.3f9a1c2e.js) and writes <outputDir>/manifest.json for createCdn({ manifest }).
Files matching --keep-name keep their name and are versioned with ?v=<hash> instead.`

/** The `cdn-url` command line; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const [command, inputDir, outputDir] = positionals
  if (command !== 'build' || !inputDir || !outputDir) {
    process.stderr.write(`${USAGE}\n`)
    return 2
  }
  try {
    const started = performance.now()
    const result = await buildManifest({
      inputDir,
      outputDir,
      ...(values.manifest ? { manifestFile: values.manifest } : {}),
      ...(values['hash-length'] ? { hashLength: Number(values['hash-length']) } : {}),
      ...(values.concurrency ? { concurrency: Number(values.concurrency) } : {}),
      ...(values['keep-name'] ? { keepNames: values['keep-name'].map((source) => new RegExp(source)) } : {}),
    })
    const ms = Math.round(performance.now() - started)
    process.stdout.write(
      `cdn-url: ${result.files} files (${result.bytes} bytes) in ${ms} ms -> ${result.manifestPath}\n`,
    )
    if (result.skipped.length > 0) {
      process.stderr.write(
        `cdn-url: skipped ${result.skipped.length} entries that are not regular files (symbolic links): ${result.skipped.join(', ')}\n`,
      )
    }
    return 0
  } catch (error) {
    process.stderr.write(`${error instanceof CdnUrlError ? error.message : String(error)}\n`)
    return 1
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      manifest: { type: 'string' },
      'hash-length': { type: 'string' },
      concurrency: { type: 'string' },
      'keep-name': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  })
}

function invokedDirectly(): boolean {
  const invoked = process.argv[1]
  if (!invoked) return false
  try {
    // npm links the bin as a symlink: compare real paths.
    return realpathSync(invoked) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

// Run when executed as the bin (not when imported, e.g. by a test).
if (invokedDirectly()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code
  })
}
