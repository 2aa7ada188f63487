/**
 * Runs every published package's README quick start the way a new user would: packs the
 * workspace's packages, installs the tarballs (and what the quick start's install line names) in a
 * scratch project outside the workspace, then typechecks and runs each `ts` block of the quick
 * start against real servers from the test kit. A README example that no longer works fails CI.
 *
 *   pnpm exec tsx .ci/readme-quickstarts.ts [package-dir-name ...]
 *
 * Servers: `PRIMARY_URL`, `REPLICA_URL`, `DATABASE_URL` (a primary with one streaming replica),
 * `SHARD_URLS` (two databases, comma-separated) and `REDIS_URL` are set for the blocks; a block that names the standard ports (`:6379`, `:5432`)
 * has them replaced by the kit's, so nothing ever reaches the machine's own services. A block
 * that starts a server passes when it is still running without an error after `settleMs`.
 * Every ```ts or ```js block of the section is a whole program (ts blocks are typechecked
 * strictly too); a fragment is fenced as ```ts fragment.
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  type PostgresCluster,
  type RedisServer,
  startPostgres,
  startRedis,
} from '../packages/testkit/src/index.js'

const root = resolve(import.meta.dirname, '..')
// Published only because the packages depend on them; their READMEs have no quick start.
const internalBuildingBlocks = new Set(['@scale/ioredis-coalesce', '@scale/observability'])
const settleMs = 8_000
const runLimitMs = 60_000

interface PublishedPackage {
  dir: string
  name: string
  readme: string
}

function publishedPackages(only: string[]): PublishedPackage[] {
  const dirs = readdirSync(join(root, 'packages')).filter((d) => only.length === 0 || only.includes(d))
  return dirs.flatMap((dir) => {
    const path = join(root, 'packages', dir)
    const manifest = JSON.parse(readFileSync(join(path, 'package.json'), 'utf8'))
    if (manifest.private || !existsSync(join(path, 'README.md'))) return []
    return [
      { dir: path, name: manifest.name as string, readme: readFileSync(join(path, 'README.md'), 'utf8') },
    ]
  })
}

/** The text under the first `## …quick start…` heading, up to the next `## ` heading. */
function quickStartSection(readme: string): string | undefined {
  const lines = readme.split('\n')
  const start = lines.findIndex((line) => /^##\s.*quick start/i.test(line))
  if (start < 0) return undefined
  const end = lines.findIndex((line, index) => index > start && /^##\s/.test(line))
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n')
}

interface CodeBlock {
  language: string
  code: string
}

function codeBlocks(section: string, languages: string[]): CodeBlock[] {
  const blocks: CodeBlock[] = []
  for (const match of section.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)) {
    const language = match[1] ?? ''
    if (languages.includes(language)) blocks.push({ language, code: match[2] ?? '' })
  }
  return blocks
}

const scriptLanguages = ['ts', 'typescript', 'js', 'javascript']
const isTypeScript = (block: CodeBlock) => block.language === 'ts' || block.language === 'typescript'

/** Package specs from the quick start's install line (`npm install a b`, `pnpm add a b`). */
function installedBy(section: string): string[] | undefined {
  for (const { code } of codeBlocks(section, ['sh', 'bash', 'shell'])) {
    const line = code.split('\n').find((l) => /^\s*(npm (install|i)|pnpm add|yarn add)\s/.test(l))
    if (line) {
      return line
        .replace(/#.*/, '') // a trailing shell comment
        .replace(/^\s*(npm (install|i)|pnpm add|yarn add)\s+/, '')
        .split(/\s+/)
        .filter((word) => word && !word.startsWith('-'))
    }
  }
  return undefined
}

/** Bare package names imported by a block (`node:` built-ins left out). */
function importedBy({ code }: CodeBlock): string[] {
  const names = new Set<string>()
  for (const match of code.matchAll(/\bfrom\s+['"]([^'"]+)['"]/g)) {
    const spec = match[1] ?? ''
    if (spec.startsWith('node:') || spec.startsWith('.')) continue
    const parts = spec.split('/')
    names.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec))
  }
  return [...names]
}

function packAll(into: string): Map<string, string> {
  const tarballs = new Map<string, string>()
  for (const pkg of publishedPackages([])) {
    const before = new Set(readdirSync(into))
    execFileSync('pnpm', ['pack', '--pack-destination', into], { cwd: pkg.dir, stdio: 'ignore' })
    const made = readdirSync(into).find((file) => !before.has(file))
    if (made) tarballs.set(pkg.name, join(into, made))
  }
  return tarballs
}

function withKitPorts(block: string, redis: RedisServer, pg: PostgresCluster): string {
  return block.replaceAll(':6379', `:${redis.port}`).replaceAll(':5432', `:${pg.primary.port}`)
}

/** Runs `file` with tsx; resolves with a failure message, or undefined when it passed. */
function runBlock(cwd: string, file: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((done) => {
    const child = spawn(join(cwd, 'node_modules/.bin/tsx'), [file], { cwd, env, detached: true })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    const stopGroup = () => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL')
      } catch {}
    }
    // A server (app.listen) never exits: still up with no error after settleMs counts as started.
    const settled = setTimeout(() => {
      if (!/Error|error TS|Unhandled/.test(output)) {
        stopGroup()
        done(undefined)
      }
    }, settleMs)
    const limit = setTimeout(() => {
      stopGroup()
      done(`did not finish within ${runLimitMs} ms:\n${output}`)
    }, runLimitMs)
    child.on('exit', (code, signal) => {
      clearTimeout(settled)
      clearTimeout(limit)
      if (signal === 'SIGKILL') return
      done(code === 0 ? undefined : `exited with ${code ?? signal}:\n${output}`)
    })
  })
}

async function checkPackage(
  pkg: PublishedPackage,
  tarballs: Map<string, string>,
  env: NodeJS.ProcessEnv,
  servers: { redis: RedisServer; pg: PostgresCluster },
): Promise<string[]> {
  const section = quickStartSection(pkg.readme)
  if (!section) return [`${pkg.name}: README has no "## … quick start" section`]
  const blocks = codeBlocks(section, scriptLanguages)
  if (blocks.length === 0) return [`${pkg.name}: the quick start has no ts or js code block`]

  const scratch = mkdtempSync(join(tmpdir(), 'scale-quickstart-'))
  try {
    // What the README tells a user to install, else what its code imports; the @scale tarballs
    // stand in for the registry (overrides make the other @scale packages they depend on resolve to tarballs too; npm
    // refuses an override of a direct dependency).
    const wanted = installedBy(section) ?? blocks.flatMap(importedBy)
    const specs = wanted.map((spec) => tarballs.get(spec) ?? spec)
    const overrides = Object.fromEntries(
      [...tarballs].filter(([name]) => !wanted.includes(name)).map(([name, file]) => [name, `file:${file}`]),
    )
    writeFileSync(
      join(scratch, 'package.json'),
      JSON.stringify({ name: 'quickstart', private: true, type: 'module', overrides }, null, 2),
    )
    const tsconfig = (file: string) =>
      JSON.stringify({
        files: [file],
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: true,
          noEmit: true,
        },
      })
    // The toolchain a TypeScript user has anyway; everything else must come from the README.
    const tools = ['typescript@5.9', 'tsx@4', '@types/node@20']
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...specs, ...tools], {
      cwd: scratch,
      stdio: 'pipe',
    })
    const failures: string[] = []
    for (const [index, block] of blocks.entries()) {
      const file = `quickstart-${index + 1}.${isTypeScript(block) ? 'ts' : 'mjs'}`
      writeFileSync(join(scratch, file), withKitPorts(block.code, servers.redis, servers.pg))
      writeFileSync(join(scratch, 'tsconfig.json'), tsconfig(file))
      try {
        if (isTypeScript(block)) {
          execFileSync(join(scratch, 'node_modules/.bin/tsc'), ['-p', '.'], { cwd: scratch, stdio: 'pipe' })
        }
      } catch (error) {
        failures.push(
          `${pkg.name} block ${index + 1} does not typecheck:\n${(error as { stdout?: Buffer }).stdout}`,
        )
        continue
      }
      const failed = await runBlock(scratch, file, env)
      if (failed) failures.push(`${pkg.name} block ${index + 1} ${failed}`)
    }
    return failures
  } catch (error) {
    const output = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error)
    return [`${pkg.name}: installing the quick start's packages failed:\n${output}`]
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

const only = process.argv.slice(2)
const packs = mkdtempSync(join(tmpdir(), 'scale-tarballs-'))
const redis = await startRedis()
const pg = await startPostgres({ replicas: 1 })
let failures: string[] = []
try {
  const tarballs = packAll(packs)
  // Two databases on the kit's primary stand in for two shards.
  const shardUrls = []
  for (const name of ['quickstart_shard1', 'quickstart_shard2']) {
    await pg.primary.query(`create database ${name}`)
    shardUrls.push(pg.primary.url.replace(/\/[^/]*$/, `/${name}`))
  }
  const env = {
    ...process.env,
    SHARD_URLS: shardUrls.join(','),
    REDIS_URL: redis.url,
    DATABASE_URL: pg.primary.url,
    PRIMARY_URL: pg.primary.url,
    REPLICA_URL: pg.replicas[0]?.url,
  }
  for (const pkg of publishedPackages(only)) {
    if (internalBuildingBlocks.has(pkg.name)) continue
    const found = await checkPackage(pkg, tarballs, env, { redis, pg })
    console.log(found.length === 0 ? `ok    ${pkg.name}` : `FAIL  ${pkg.name}`)
    failures = failures.concat(found)
  }
} finally {
  await redis.dispose()
  await pg.stop()
  rmSync(packs, { recursive: true, force: true })
}
for (const failure of failures) console.log(`\n${failure}`)
process.exit(failures.length === 0 ? 0 : 1)
