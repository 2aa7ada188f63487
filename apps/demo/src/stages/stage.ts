import type { RegionSlice } from '../datacenters/regional-load.js'
import type { LoadResult } from '../load/run-load.js'
import type { TimelineBucket } from '../load/timeline.js'
import type { LiveFigures } from '../observe/live-metrics.js'
import type { Progress } from '../runner/progress.js'
import type { Topology, TopologySpec } from '../topology/topology.js'
import type { QueueSample } from './queue-autoscaler.js'

/** How long the load phases run. */
export interface Durations {
  warmupMs: number
  steadyMs: number
  drillMs: number
}

export interface StageContext {
  durations: Durations
  /** Concurrent connections (virtual users) of every load phase. */
  connections: number
  users: number
  progress: Progress
}

/** What happened during a fault drill, measured by the load side. */
export interface DrillResult {
  name: string
  /** Each fault and when (ms since the drill phase began). */
  events: { atMs: number; what: string }[]
  /** Failed requests: 5xx answers and requests with no answer. */
  errors: number
  /** From the first fault to the last failed request (0: nothing failed). */
  recoveryMs: number
  load: LoadResult
  timeline: TimelineBucket[]
  /** Figures particular to this drill. */
  measures: Record<string, number | string>
}

export interface StageResult {
  number: number
  title: string
  whatAppears: string
  /** The servers that ran, one line each. */
  topology: string[]
  urls: Record<string, string>
  /** The steady (fault-free) load phase. */
  load: LoadResult
  /** Stage figures: primary queries per 1,000 requests, share of reads off the primary, hit ratios… */
  measures: Record<string, number | string>
  drill: DrillResult | undefined
  /** What this stage shows, one sentence, written from the measures. */
  notes: string[]
  /** Stage 8: which region answered the clients of each region during the drill, per 250 ms. */
  regionTimeline?: RegionSlice[]
  /** Stage 9: queue depth, workers and job latency over time. */
  queueTimeline?: QueueSample[]
  /** Stage 10: what the live dashboard showed, once a second. */
  liveMetrics?: LiveFigures[]
}

export interface Stage {
  number: number
  title: string
  whatAppears: string
  topology(
    context: StageContext,
  ): Omit<TopologySpec, 'users' | 'seed' | 'logDir'> & Partial<Pick<TopologySpec, 'users'>>
  /**
   * Stages that start their own servers (8, 11) start them here for `--stage N` and return their
   * URLs (`entry`: where users come in).
   */
  serve?(topology: Topology, context: StageContext): Promise<Record<string, string>>
  run(
    topology: Topology,
    context: StageContext,
  ): Promise<Omit<StageResult, 'number' | 'title' | 'whatAppears' | 'urls' | 'topology'>>
}
