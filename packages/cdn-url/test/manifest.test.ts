import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { uniqueName } from '@scale/testkit/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CdnOptionsError, ManifestInvalidError } from '../src/index.js'
import { buildManifest, parseManifest, readManifest } from '../src/manifest-entry.js'

let root: string
let input: string

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest()

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cdn-url-manifest-'))
  input = join(root, 'public')
  await mkdir(join(input, 'js/vendor'), { recursive: true })
  await mkdir(join(input, '.well-known'), { recursive: true })
  await writeFile(join(input, 'js/app.js'), 'console.log("app")\n')
  await writeFile(join(input, 'js/app.js.br'), 'brotli bytes')
  await writeFile(join(input, 'js/app.js.gz'), 'gzip bytes')
  await writeFile(join(input, 'js/vendor/big.bin'), randomBytes(3 * 1024 * 1024 + 17))
  await writeFile(join(input, 'favicon.ico'), 'icon')
  await writeFile(join(input, 'index.html'), '<html></html>')
  await writeFile(join(input, '.well-known/security.txt'), 'Contact: x')
  await writeFile(join(input, 'LICENSE'), 'MIT')
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('buildManifest', () => {
  it('fingerprints every file by its SHA-256 and copies it under that name', async () => {
    const out = join(root, 'out1')
    const { manifest, files, manifestPath } = await buildManifest({
      inputDir: input,
      outputDir: out,
      concurrency: 3,
    })
    expect(files).toBe(6) // the .br/.gz siblings follow their file, they are not assets
    const app = manifest.assets['js/app.js']
    const appHash = sha256('console.log("app")\n')
    expect(app).toEqual({
      file: `js/app.${appHash.toString('hex').slice(0, 8)}.js`,
      hash: appHash.toString('hex').slice(0, 8),
      integrity: `sha256-${appHash.toString('base64')}`,
      size: 19,
    })
    expect(await readFile(join(out, app?.file as string), 'utf8')).toBe('console.log("app")\n')
    expect(await readFile(join(out, `${app?.file}.br`), 'utf8')).toBe('brotli bytes')
    expect(await readFile(join(out, `${app?.file}.gz`), 'utf8')).toBe('gzip bytes')

    const big = manifest.assets['js/vendor/big.bin']
    const bigBytes = await readFile(join(input, 'js/vendor/big.bin'))
    expect(big?.hash).toBe(sha256(bigBytes).toString('hex').slice(0, 8))
    expect(Buffer.compare(await readFile(join(out, big?.file as string)), bigBytes)).toBe(0)

    // Names fixed from outside keep their name and are versioned.
    for (const kept of ['favicon.ico', 'index.html', '.well-known/security.txt']) {
      expect(manifest.assets[kept]).toMatchObject({ file: kept, versioned: true })
      expect(existsSync(join(out, kept))).toBe(true)
    }
    expect(manifest.assets.LICENSE?.file).toMatch(/^LICENSE\.[0-9a-f]{8}$/)
    expect(await readManifest(manifestPath)).toEqual(manifest)
  })

  it('skips symbolic links (to files, to directories, dangling) and lists them in `skipped`', async () => {
    const linked = join(root, uniqueName('links-'))
    await mkdir(join(linked, 'dir'), { recursive: true })
    await writeFile(join(linked, 'dir/real.txt'), 'real')
    await symlink(join(linked, 'dir/real.txt'), join(linked, 'to-file.txt'))
    await symlink(join(linked, 'dir'), join(linked, 'to-dir'))
    await symlink(join(linked, 'nowhere'), join(linked, 'dangling.txt'))
    const result = await buildManifest({ inputDir: linked, outputDir: out(), write: false })
    expect(Object.keys(result.manifest.assets)).toEqual(['dir/real.txt'])
    expect(result.skipped).toEqual(['dangling.txt', 'to-dir', 'to-file.txt'])
  })

  it('is deterministic, and a changed file gets a new name while the others keep theirs', async () => {
    const first = await buildManifest({ inputDir: input, outputDir: join(root, 'out2'), write: false })
    const again = await buildManifest({ inputDir: input, outputDir: join(root, 'out3'), write: false })
    expect(JSON.stringify(again.manifest)).toBe(JSON.stringify(first.manifest))
    await writeFile(join(input, 'LICENSE'), 'MIT, changed')
    const changed = await buildManifest({ inputDir: input, outputDir: join(root, 'out4'), write: false })
    expect(changed.manifest.assets.LICENSE?.file).not.toBe(first.manifest.assets.LICENSE?.file)
    expect(changed.manifest.assets['js/app.js']).toEqual(first.manifest.assets['js/app.js'])
  })

  it('refuses an output dir inside the input dir, and a bad hash length, before touching anything', async () => {
    await expect(buildManifest({ inputDir: input, outputDir: join(input, 'dist') })).rejects.toBeInstanceOf(
      CdnOptionsError,
    )
    await expect(
      buildManifest({ inputDir: input, outputDir: join(root, 'x'), hashLength: 2 }),
    ).rejects.toMatchObject({
      code: 'E_CDN_INVALID_OPTIONS',
      context: { option: 'hashLength' },
    })
    expect(existsSync(join(input, 'dist'))).toBe(false)
  })

  it('fails with a typed error for a missing input dir', async () => {
    await expect(
      buildManifest({ inputDir: join(root, 'nope'), outputDir: join(root, 'o') }),
    ).rejects.toMatchObject({
      code: 'E_CDN_MANIFEST_BUILD_FAILED',
    })
  })
})

describe('the cdn-url CLI', () => {
  const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', cli, ...args], (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      )
    })

  it('builds a manifest and reports what it did', async () => {
    const out = join(root, 'cli-out')
    const { code, stdout } = await run(['build', input, out, '--keep-name', 'LICENSE$'])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^cdn-url: 6 files \(\d+ bytes\) in \d+ ms -> /)
    const manifest = await readManifest(join(out, 'manifest.json'))
    expect(manifest.assets.LICENSE).toMatchObject({ file: 'LICENSE', versioned: true })
    expect(manifest.assets['js/app.js']?.file).toMatch(/^js\/app\.[0-9a-f]{8}\.js$/)
  })

  it('exits 2 with the usage on bad arguments and 1 on a failed build', async () => {
    expect((await run(['frobnicate'])).code).toBe(2)
    expect((await run(['build', input, out()])).code).toBe(0)
    const failed = await run(['build', join(root, 'missing'), join(root, 'o2')])
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/\[@scale\/cdn-url\] could not fingerprint/)
  })
})

const out = () => join(root, uniqueName('o-'))

describe('parseManifest', () => {
  it('reads a Vite manifest: entries, their CSS and the hash in the name', () => {
    const vite = {
      'index.html': {
        file: 'assets/index-BRBmoGS9.js',
        src: 'index.html',
        isEntry: true,
        css: ['assets/index-C4JL8p-D.css'],
      },
      'src/logo.svg': { file: 'assets/logo-Cr0hXKuh.svg', src: 'src/logo.svg' },
    }
    const { assets } = parseManifest(vite)
    expect(assets['index.html']).toEqual({ file: 'assets/index-BRBmoGS9.js', hash: 'BRBmoGS9' })
    expect(assets['assets/index-C4JL8p-D.css']?.file).toBe('assets/index-C4JL8p-D.css')
    expect(assets['src/logo.svg']?.hash).toBe('Cr0hXKuh')
  })

  it('reads a webpack-manifest-plugin manifest, with or without a public path', () => {
    const webpack = {
      'main.js': '/static/main.7c3e1a9f.js',
      'main.css': 'https://cdn.example.com/static/main.0be2d4aa.css',
      'logo.png': 'auto/logo.5d41402a.png',
    }
    const { assets } = parseManifest(webpack)
    expect(assets['main.js']).toEqual({ file: 'static/main.7c3e1a9f.js', hash: '7c3e1a9f' })
    expect(assets['main.css']?.file).toBe('static/main.0be2d4aa.css')
    expect(assets['logo.png']?.file).toBe('auto/logo.5d41402a.png')
  })

  it('refuses a file that leaves the asset root, in any of the three shapes', () => {
    for (const json of [
      { version: 1, assets: { 'a.js': { file: '../../etc/passwd', hash: 'x' } } },
      { version: 1, assets: { 'a.js': { file: 'js/%2e%2e/../x', hash: 'x' } } },
      { 'a.js': '/static/../../etc/passwd' },
      { 'src/a.ts': { file: 'assets/..\\x.js' } },
      { 'a.js': { file: 'assets/a.js', css: ['../b.css'] } },
      { '../a.js': 'a.1234abcd.js' },
    ]) {
      expect(() => parseManifest(json), JSON.stringify(json)).toThrow(ManifestInvalidError)
    }
  })

  it('takes the JSON text as well as the parsed object', () => {
    const text = '{"main.js":"/static/main.7c3e1a9f.js"}'
    expect(parseManifest(text)).toEqual(parseManifest(JSON.parse(text)))
    expect(() => parseManifest('{not json')).toThrow(/is not valid JSON/)
  })

  it('refuses what is none of the three with a typed error naming the entry', () => {
    expect(() => parseManifest([])).toThrow(ManifestInvalidError)
    expect(() => parseManifest({ 'a.js': 42 })).toThrow(/entry "a.js"/)
    expect(() => parseManifest({ version: 1, assets: { 'a.js': { file: 1 } } })).toThrow(ManifestInvalidError)
  })
})
