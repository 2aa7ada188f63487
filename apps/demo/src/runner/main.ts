/**
 * `pnpm demo`: walks the stages on real servers and writes demo-report/{results.json,REPORT.md,index.html}.
 *   --quick      short load phases (CI; under 5 minutes)
 *   --stage N    start stage N's servers, print their URLs, keep them up until Ctrl-C
 *   --users N    size of the seeded data set (default 100,000)
 *   --only 1,3   run only these stages (for trying one out; the report then has only them)
 *   --report     render REPORT.md and index.html again from demo-report/results.json
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { writeReports } from '../report/write-reports.js'
import { STAGES } from '../stages/index.js'
import type { Durations, Stage, StageContext } from '../stages/stage.js'
import { Topology } from '../topology/topology.js'
import { ensureServerBinaries } from './binaries.js'
import { reportDir } from './paths.js'
import { Progress } from './progress.js'
import { type DemoResults, describeMachine } from './results.js'

const SEED = 42
const QUICK: Durations = { warmupMs: 1_000, steadyMs: 5_000, drillMs: 8_000 }
const FULL: Durations = { warmupMs: 3_000, steadyMs: 20_000, drillMs: 30_000 }

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    stage: { type: 'string' },
    users: { type: 'string', default: '100000' },
    connections: { type: 'string', default: '32' },
    only: { type: 'string' },
    report: { type: 'boolean', default: false },
  },
})

const progress = new Progress()
const running = new Set<Topology>()
let stopping = false

async function teardownAndExit(code: number): Promise<never> {
  if (!stopping) {
    stopping = true
    progress.note('stopping every server…')
    await Promise.all([...running].map((t) => t.stop()))
  }
  process.exit(code)
}
process.on('SIGINT', () => void teardownAndExit(130))
process.on('SIGTERM', () => void teardownAndExit(143))

function topologySpec(stage: Stage, context: StageContext, logDir: string) {
  // A stage may seed fewer users into its own database (stage 11's is only the control database).
  return { users: context.users, seed: SEED, logDir, ...stage.topology(context) }
}

async function startStage(stage: Stage, context: StageContext, logDir: string): Promise<Topology> {
  progress.stage(`stage ${stage.number}/${STAGES.at(-1)?.number} ${stage.title}`)
  const topology = await Topology.start(topologySpec(stage, context, logDir), (step) =>
    progress.step(`start ${step}`),
  )
  running.add(topology)
  return topology
}

async function stopStage(topology: Topology): Promise<void> {
  progress.step('teardown')
  await topology.stop()
  running.delete(topology)
}

/** `--stage N`: the stage's servers stay up for exploring; Ctrl-C stops them. */
async function serveOneStage(stage: Stage, context: StageContext, dir: string): Promise<void> {
  const topology = await startStage(stage, context, join(dir, 'logs', `stage-${stage.number}`))
  const own = (await stage.serve?.(topology, context)) ?? {}
  progress.done()
  console.log(`\nstage ${stage.number}: ${stage.title} (${stage.whatAppears})`)
  for (const [name, url] of Object.entries({ ...topology.urls(), ...own }))
    console.log(`  ${name.padEnd(26)} ${url}`)
  const entry = own.entry ?? topology.entryUrl
  console.log(`\ntry: curl ${entry}/users/1   ·   ${entry}/u/1 in a browser`)
  console.log(`logs: ${join(dir, 'logs', `stage-${stage.number}`)}\nCtrl-C stops everything.`)
  await new Promise(() => {}) // until a signal
}

async function main(): Promise<void> {
  const durations = values.quick ? QUICK : FULL
  const context: StageContext = {
    durations,
    connections: Number(values.connections),
    users: Number(values.users),
    progress,
  }
  const dir = reportDir()
  mkdirSync(dir, { recursive: true })
  if (values.report) {
    const saved = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as DemoResults
    for (const file of writeReports(dir, saved)) console.log(`  ${join(dir, file)}`)
    return
  }
  ensureServerBinaries((line) => console.log(line))

  if (values.stage !== undefined) {
    const stage = STAGES.find((s) => s.number === Number(values.stage))
    if (!stage)
      throw new Error(`no stage ${values.stage}; stages are ${STAGES.map((s) => s.number).join(', ')}`)
    return serveOneStage(stage, context, dir)
  }

  const started = new Date()
  const results: DemoResults = {
    version: 1,
    startedAt: started.toISOString(),
    finishedAt: '',
    durationS: 0,
    quick: values.quick === true,
    machine: describeMachine(),
    settings: { users: context.users, connections: context.connections, durations },
    stages: [],
  }
  let failed = 0
  const only = values.only?.split(',').map(Number)
  for (const stage of STAGES.filter((s) => !only || only.includes(s.number))) {
    let topology: Topology | undefined
    try {
      topology = await startStage(stage, context, join(dir, 'logs', `stage-${stage.number}`))
      const outcome = await stage.run(topology, context)
      results.stages.push({
        number: stage.number,
        title: stage.title,
        whatAppears: stage.whatAppears,
        topology: Object.keys(topology.urls()),
        urls: topology.urls(),
        ...outcome,
      })
      progress.note(`stage ${stage.number} ${stage.title}: ${outcome.notes.join(' ')}`)
    } catch (error) {
      failed++
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
      results.stages.push({
        number: stage.number,
        title: stage.title,
        whatAppears: stage.whatAppears,
        error: message,
      })
      progress.note(`stage ${stage.number} ${stage.title} FAILED: ${message}`)
    } finally {
      if (topology) await stopStage(topology)
    }
    if (stopping) return
  }
  const finished = new Date()
  results.finishedAt = finished.toISOString()
  results.durationS = Math.round((finished.getTime() - started.getTime()) / 1000)
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`)
  const written = writeReports(dir, results)
  progress.done()
  console.log(`\n${results.stages.length} stages in ${results.durationS} s; ${failed} failed`)
  for (const file of ['results.json', ...written]) console.log(`  ${join(dir, file)}`)
  process.exitCode = failed > 0 ? 1 : 0
}

main().catch(async (error: unknown) => {
  progress.done()
  console.error(error instanceof Error ? error.message : error)
  await teardownAndExit(1)
})
