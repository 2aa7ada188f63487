// pnpm bench: @scale/cdn-url next to what a team would otherwise write, in one process run.
//  - cdn.url() vs building the same fingerprinted URL by string concatenation from the manifest
//  - signing and verification per second (HMAC-SHA256, canonical encoding)
//  - buildManifest over 10,000 files vs a naive sequential readFile + hash loop
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AssetManifest, createCdn } from '../src/index.js'
import { buildManifest } from '../src/manifest-entry.js'

const MEASURE_MS = 1_000
const ROUNDS = 3

/** Calls `fn` in batches for MEASURE_MS and returns calls per second; best of ROUNDS (least disturbed by neighbours). */
function opsPerSecond(fn: (i: number) => unknown): number {
  let sink = 0
  for (let i = 0; i < 20_000; i++) sink += String(fn(i)).length // warm-up (JIT)
  let best = 0
  for (let round = 0; round < ROUNDS; round++) {
    let calls = 0
    const start = performance.now()
    let elapsed = 0
    while (elapsed < MEASURE_MS) {
      for (let i = 0; i < 1_000; i++) sink += String(fn(calls + i)).length
      calls += 1_000
      elapsed = performance.now() - start
    }
    best = Math.max(best, (calls / elapsed) * 1000)
  }
  if (sink === -1) console.log('unreachable')
  return Math.round(best)
}

async function main(): Promise<void> {
  // 1. url() vs concatenation, over a manifest of 1,000 assets.
  const assets: AssetManifest['assets'] = {}
  const paths: string[] = []
  for (let i = 0; i < 1_000; i++) {
    const path = `js/chunk-${i}.js`
    paths.push(path)
    assets[path] = {
      file: `js/chunk-${i}.${i.toString(16).padStart(8, '0')}.js`,
      hash: i.toString(16).padStart(8, '0'),
    }
  }
  const manifest: AssetManifest = { version: 1, assets }
  const base = 'https://cdn.example.com'
  const cdn = createCdn({ baseUrl: base, manifest })
  const concat = (path: string) => `${base}/${manifest.assets[path]?.file}`
  if (cdn.url(paths[7] as string) !== concat(paths[7] as string))
    throw new Error('bench: url() and concatenation disagree')
  const urlOps = opsPerSecond((i) => cdn.url(paths[i % 1000] as string))
  const concatOps = opsPerSecond((i) => concat(paths[i % 1000] as string))
  // With options the URL is built every call (no memo): lookup, encoding, query.
  const builtOps = opsPerSecond((i) => cdn.url(paths[i % 1000] as string, { version: '2' }))

  // 2. signing and verification.
  const signer = createCdn({ baseUrl: base, signing: { keys: [{ id: 'k1', secret: randomBytes(32) }] } })
  const signOps = opsPerSecond((i) => signer.url(`uploads/photo ${i % 1000}.jpg`, { sign: true }))
  const signed = Array.from({ length: 1000 }, (_, i) =>
    signer.url(`uploads/photo ${i}.jpg`, { sign: true }).slice(base.length),
  )
  const verifyOps = opsPerSecond((i) => signer.verify(signed[i % 1000] as string).keyId)

  // 3. manifest build for 10,000 files (1-4 KiB each, in 100 directories).
  const root = await mkdtemp(join(tmpdir(), 'cdn-url-bench-'))
  const input = join(root, 'in')
  for (let d = 0; d < 100; d++) {
    await mkdir(join(input, `dir${d}`), { recursive: true })
    await Promise.all(
      Array.from({ length: 100 }, (_, f) =>
        writeFile(join(input, `dir${d}`, `file${f}.js`), randomBytes(1024 + ((d * 100 + f) % 3072))),
      ),
    )
  }
  const buildTimes: number[] = []
  const naiveTimes: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    let start = performance.now()
    const { files } = await buildManifest({ inputDir: input, outputDir: join(root, `out${round}`) })
    buildTimes.push(performance.now() - start)
    if (files !== 10_000) throw new Error(`bench: expected 10000 files, got ${files}`)
    // The anchor: what a build script does without us: one file after the other, read whole, hash, copy.
    start = performance.now()
    const out = join(root, `naive${round}`)
    const naive: Record<string, string> = {}
    for (const entry of await readdir(input, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue
      const from = join(entry.parentPath, entry.name)
      const data = await readFile(from)
      const hash = createHash('sha256').update(data).digest('hex').slice(0, 8)
      const relative = from.slice(input.length + 1).replace(/\.js$/, `.${hash}.js`)
      await mkdir(join(out, relative, '..'), { recursive: true })
      await writeFile(join(out, relative), data)
      naive[from] = relative
    }
    await writeFile(join(out, 'manifest.json'), JSON.stringify(naive))
    naiveTimes.push(performance.now() - start)
  }
  await rm(root, { recursive: true, force: true })
  const buildMs = Math.round(Math.min(...buildTimes))
  const naiveMs = Math.round(Math.min(...naiveTimes))

  const rows = [
    ['cdn.url() (manifest lookup, encoding)', urlOps, 'string concatenation', concatOps],
    ['cdn.url(path, { version }) (built each call)', builtOps, 'string concatenation', concatOps],
    ['cdn.url(path, { sign: true })', signOps, '', 0],
    ['cdn.verify(target)', verifyOps, '', 0],
  ] as const
  for (const [label, ops, anchor, anchorOps] of rows) {
    console.log(
      `${label.padEnd(46)} ${ops.toLocaleString('en-US').padStart(12)} calls/s` +
        (anchorOps
          ? `   ${anchor}: ${anchorOps.toLocaleString('en-US')} calls/s (ratio ${(ops / anchorOps).toFixed(3)})`
          : ''),
    )
  }
  console.log(
    `buildManifest, 10,000 files: ${buildMs} ms   naive sequential read+hash+copy: ${naiveMs} ms (ratio ${(naiveMs / buildMs).toFixed(2)}x faster)`,
  )
  console.log(
    `best of ${ROUNDS} rounds of ${MEASURE_MS} ms each; the machine is shared, so figures are noisy.`,
  )
  console.log(
    `BENCH ${JSON.stringify({
      package: '@scale/cdn-url',
      anchor: 'string concatenation from the manifest; a sequential readFile+sha256+copy loop',
      urlCallsPerSecond: urlOps,
      concatCallsPerSecond: concatOps,
      urlVsConcatRatio: Number((urlOps / concatOps).toFixed(3)),
      urlBuiltEachCallPerSecond: builtOps,
      urlBuiltVsConcatRatio: Number((builtOps / concatOps).toFixed(3)),
      signPerSecond: signOps,
      verifyPerSecond: verifyOps,
      manifestBuildMs10k: buildMs,
      naiveBuildMs10k: naiveMs,
      manifestBuildSpeedup: Number((naiveMs / buildMs).toFixed(2)),
    })}`,
  )
}

await main()
