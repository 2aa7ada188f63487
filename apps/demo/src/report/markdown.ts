import { type DemoResults, isFailed } from '../runner/results.js'
import { change, percent, plain, stageRows } from './figures.js'

/** The report's main table as Markdown (the README quotes it). */
export function markdownTable(results: DemoResults): string {
  const lines = [
    '| stage | req/s | p50 ms | p99 ms | db queries / 1k req | primary queries / 1k req | reads off primary | cache hits | edge hits | stale reads | users logged out | drill | drill errors | recovery ms |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|',
  ]
  for (const row of stageRows(results)) {
    if (row.error) {
      lines.push(`| ${row.stage} | failed: ${row.error.replaceAll('|', '/')} |||||||||||||`)
      continue
    }
    lines.push(
      `| ${row.stage} | ${plain(row.throughputRps)} | ${plain(row.p50Ms)} | ${plain(row.p99Ms)} | ${plain(row.dbQueriesPer1k)} | ${plain(row.primaryQueriesPer1k)} | ${percent(row.readsOffPrimary)} | ${percent(row.cacheHitRatio)} | ${percent(row.edgeHitRatio)} | ${plain(row.staleReads)} | ${plain(row.loggedOutUsers)} | ${row.drill || '—'} | ${plain(row.drillErrors)} | ${plain(row.recoveryMs)} |`,
    )
  }
  return lines.join('\n')
}

export function renderMarkdown(results: DemoResults): string {
  const m = results.machine
  const out = [
    '# @scale demo report',
    '',
    `Run ${results.startedAt} (${results.durationS} s${results.quick ? ', --quick' : ''}) on ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}.`,
    `Load: ${results.settings.connections} connections; ${results.settings.users.toLocaleString('en')} seeded users; ` +
      `phases of ${results.settings.durations.steadyMs / 1000} s steady and ${results.settings.durations.drillMs / 1000} s drill. ` +
      'Every figure below was measured in this run; the servers and the load generator share the machine.',
    '',
    markdownTable(results),
    '',
  ]
  const rows = stageRows(results)
  for (const stage of results.stages) {
    out.push(`## Stage ${stage.number}: ${stage.title}`, '', `What appears: ${stage.whatAppears}.`, '')
    if (isFailed(stage)) {
      out.push('```', stage.error, '```', '')
      continue
    }
    out.push(...stage.notes.map((n) => `- ${n}`))
    const row = rows.find((r) => r.stage.startsWith(`${stage.number} `))
    const before = rows[rows.indexOf(row!) - 1]
    if (row && before && !before.error) {
      const parts = [
        ['throughput', change(row.throughputRps, before.throughputRps)],
        ['p99', change(row.p99Ms, before.p99Ms)],
        ['database queries per request', change(row.dbQueriesPer1k, before.dbQueriesPer1k)],
        ['primary queries per request', change(row.primaryQueriesPer1k, before.primaryQueriesPer1k)],
      ].filter(([, v]) => v !== undefined)
      out.push(`- Against stage ${before.stage}: ${parts.map(([k, v]) => `${k} ${v}`).join(', ')}.`)
    }
    out.push('')
    out.push(`Servers: ${stage.topology.join(', ')}.`, '')
    const measures = Object.entries(stage.measures).map(([k, v]) => `\`${k}\` ${v}`)
    out.push(
      `Steady load (${stage.load.mix} mix): ${stage.load.requests.toLocaleString('en')} requests in ${(stage.load.durationMs / 1000).toFixed(1)} s, ` +
        `p50 ${stage.load.latencyMs.p50} ms, p90 ${stage.load.latencyMs.p90} ms, p99 ${stage.load.latencyMs.p99} ms; ` +
        `${stage.load.non2xx} non-2xx, ${stage.load.connectionErrors} connection errors. ${measures.join(', ')}.`,
      '',
    )
    const counts = Object.entries(stage.load.counts).map(([k, v]) => `\`${k}\` ${v}`)
    if (counts.length) out.push(`Counted by the load side: ${counts.join(', ')}.`, '')
    if (stage.drill) {
      const d = stage.drill
      out.push(
        `Drill "${d.name}": ${d.events.map((e) => `at ${(e.atMs / 1000).toFixed(1)} s ${e.what}`).join('; ')}. ` +
          `${d.errors} failed requests of ${d.load.requests.toLocaleString('en')}, recovery ${d.recoveryMs} ms` +
          `${
            Object.keys(d.measures).length
              ? `; ${Object.entries(d.measures)
                  .map(([k, v]) => `\`${k}\` ${v}`)
                  .join(', ')}`
              : ''
          }.`,
        '',
      )
      const samples = d.load.failureSamples ?? []
      if (samples.length > 0) {
        const quoted = samples.map((x) => `\`${x.replaceAll('`', "'").replaceAll('\n', ' ')}\``)
        out.push(`First failed answers: ${quoted.join('; ')}.`, '')
      }
    }
  }
  return `${out.join('\n')}\n`
}
