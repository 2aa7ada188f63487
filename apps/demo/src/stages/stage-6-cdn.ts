import { createAssetUrls } from '../app/assets.js'
import { assetMix, profileMix } from '../load/mixes.js'
import { runLoad } from '../load/run-load.js'
import { ban, type Edge, purge } from '../topology/edge.js'
import type { Topology } from '../topology/topology.js'
import { delta, ratio, snapshot } from './measure.js'
import { drillLoad, steadyLoad } from './phases.js'
import type { Stage, StageContext } from './stage.js'

/** Photos the asset load asks for (popular ones far more often). */
const PHOTOS = 5_000

/** `X-Cache` (HIT or MISS) of one request through the edge. */
async function probe(edge: Edge, path: string): Promise<string> {
  const response = await fetch(`${edge.url}${path}`)
  await response.arrayBuffer()
  return response.headers.get('x-cache') ?? '?'
}

async function assetPhase(topology: Topology, edge: Edge, context: StageContext) {
  const css = createAssetUrls('')('/assets/app.css')
  context.progress.step(`assets through the edge, ${context.durations.steadyMs / 1000} s`)
  const edgeBefore = await edge.counters()
  const before = await snapshot(topology)
  const load = await runLoad({
    url: edge.url,
    durationMs: context.durations.steadyMs,
    connections: context.connections,
    mix: assetMix(css, PHOTOS),
    onProgress: (n) => context.progress.requests(n),
  })
  const edgeAfter = await edge.counters()
  const tier = delta(before, await snapshot(topology))
  return {
    load,
    originFetches: edgeAfter.backendRequests - edgeBefore.backendRequests,
    photoLoads: tier.photoLoads,
  }
}

/** A Varnish edge in front of the origin for images and CSS, whose URLs come from @scale/cdn-url. */
export const cdn: Stage = {
  number: 6,
  title: 'CDN',
  whatAppears: 'a Varnish edge for images and CSS; page asset URLs from @scale/cdn-url',
  topology: () => ({
    replicas: 2,
    webServers: 3,
    loadBalancer: true,
    redis: true,
    edge: true,
    unixSocket: false,
    app: { cache: true },
  }),
  async run(topology, context) {
    const edge = topology.edge!
    // The same profile load as before, now through the edge (API answers are no-store: passed through).
    const { load, measures } = await steadyLoad(topology, context, () => profileMix(context.users))
    const assets = await assetPhase(topology, edge, context)
    const requests = assets.load.counts.assetRequests ?? 0
    const edgeHits = assets.load.counts.edgeHits ?? 0

    // Drill: the asset load again; mid-way every photo is banned by its Surrogate-Key, and one URL
    // the load never asks for is purged and probed: MISS, HIT, purge, MISS (fetched again), HIT.
    const probePath = `/photos/${PHOTOS + 1}.svg`
    const probeResult: string[] = [await probe(edge, probePath), await probe(edge, probePath)]
    const drill = await drillLoad(
      topology,
      context,
      'purge and ban',
      assetMix(createAssetUrls('')('/assets/app.css'), PHOTOS),
      [
        {
          at: 0.5,
          what: `BAN Surrogate-Key: photos (every photo), PURGE ${probePath}`,
          run: async () => {
            await ban(edge, 'photos')
            probeResult.push(
              `PURGE ${await purge(edge, probePath)}`,
              await probe(edge, probePath),
              await probe(edge, probePath),
            )
          },
        },
      ],
      edge.url,
    )
    drill.measures = {
      probe: probeResult.join(' → '),
      edgeHitRatio: ratio(drill.load.counts.edgeHits ?? 0, drill.load.counts.assetRequests ?? 0),
    }
    const edgeHitRatio = ratio(edgeHits, requests)
    const originSaved = ratio(requests - assets.originFetches, requests)
    return {
      load,
      measures: {
        ...measures,
        staleReads: load.counts.staleReads ?? 0,
        assetRequests: requests,
        assetThroughputRps: assets.load.throughputRps,
        assetP99Ms: assets.load.latencyMs.p99,
        edgeHitRatio,
        originFetches: assets.originFetches,
        originRequestsSaved: originSaved,
      },
      drill,
      notes: [
        `The edge answered ${Math.round(edgeHitRatio * 100)}% of ${requests} asset requests itself; the origin ` +
          `served ${assets.originFetches} (${Math.round(originSaved * 100)}% of origin requests saved).`,
        `Purge: ${probeResult.join(' → ')}.`,
      ],
    }
  },
}
