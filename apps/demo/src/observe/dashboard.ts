import { createServer, type Server } from 'node:http'
import type { LiveMetrics } from './live-metrics.js'

/** The dashboard page: a table of live figures, refreshed from /live.json every second (no framework). */
const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>@scale demo: live</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:40rem}td,th{padding:.3rem .8rem;text-align:left}
td{font-variant-numeric:tabular-nums}caption{text-align:left;color:#555}</style></head>
<body><h1>Live: every process's /metrics, scraped while the stage runs</h1>
<table aria-live="polite"><caption id="at">waiting for the first scrape…</caption><tbody id="figures"></tbody></table>
<script>
var LABELS = [['requestsPerSecond','requests / s (web tier)'],['errorsPerSecond','5xx / s'],['meanLatencyMs','mean latency (ms)'],
  ['cacheHitRatio','cache hit ratio'],['edgeHitRatio','edge hit ratio'],['loggedInUsers','logged-in users'],
  ['queueDepth','photo queue depth'],['workers','photo workers'],['thumbnailsPerSecond','thumbnails / s'],
  ['scraped','processes scraped'],['residentMiB','resident memory (MiB)']];
function show(latest) {
  var rows = LABELS.map(function (l) {
    var v = latest[l[0]]; var text = v === null || v === undefined ? '—' : String(v);
    return '<tr><th scope="row">' + l[1] + '</th><td data-figure="' + l[0] + '">' + text + '</td></tr>';
  });
  document.getElementById('figures').innerHTML = rows.join('');
  document.getElementById('at').textContent = 'at ' + (latest.t / 1000).toFixed(1) + ' s';
}
function poll() {
  fetch('/live.json').then(function (r) { return r.json(); }).then(function (live) {
    if (live.latest) show(live.latest);
  }).catch(function () {}).finally(function () { setTimeout(poll, 1000); });
}
poll();
</script></body></html>`

/** Serves the dashboard on a free loopback port while a stage runs. */
export async function startDashboard(metrics: LiveMetrics): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    if (request.url === '/live.json') {
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      response.end(JSON.stringify({ latest: metrics.latest ?? null, history: metrics.history.slice(-120) }))
    } else if (request.url === '/' || request.url === '/index.html') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE)
    } else {
      response.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
