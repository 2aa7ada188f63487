import { cpus, totalmem } from 'node:os'
import type { Durations, StageResult } from '../stages/stage.js'

/** demo-report/results.json: every figure of the reports comes from this file alone. */
export interface DemoResults {
  version: 1
  startedAt: string
  finishedAt: string
  durationS: number
  quick: boolean
  machine: { cpus: number; cpuModel: string; memoryGiB: number; platform: string; node: string }
  settings: { users: number; connections: number; durations: Durations }
  stages: (StageResult | FailedStage)[]
}

export interface FailedStage {
  number: number
  title: string
  whatAppears: string
  error: string
}

export function isFailed(stage: StageResult | FailedStage): stage is FailedStage {
  return 'error' in stage
}

export function describeMachine(): DemoResults['machine'] {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
  }
}
