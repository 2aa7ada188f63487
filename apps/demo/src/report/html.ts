import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { escapeHtml } from '../app/escape-html.js'
import type { DemoResults } from '../runner/results.js'
import { markdownTable } from './markdown.js'

const require = createRequire(import.meta.url)

/** uPlot's script and stylesheet, inlined so the page works offline and from file://. */
function uplotAssets(): { script: string; css: string } {
  const script = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8')
  const css = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8')
  return { script, css }
}

/** JSON for a <script> block: `</script>` inside a string must not end the block. */
const scriptJson = (value: unknown) => JSON.stringify(value).replaceAll('<', '\\u003c')

/** The table as HTML (the same rows as REPORT.md). */
function htmlTable(results: DemoResults): string {
  const [header = '', , ...rows] = markdownTable(results).split('\n')
  const cells = (line: string) =>
    line
      .split('|')
      .slice(1, -1)
      .map((c) => escapeHtml(c.trim()))
  return `<table><thead><tr>${cells(header)
    .map((c) => `<th>${c}</th>`)
    .join('')}</tr></thead><tbody>${rows
    .map(
      (row) =>
        `<tr>${cells(row)
          .map((c) => `<td>${c}</td>`)
          .join('')}</tr>`,
    )
    .join('')}</tbody></table>`
}

/**
 * demo-report/index.html: the table and the charts, drawn in the browser by uPlot from the
 * results embedded in the page (nothing else is read).
 */
export function renderHtml(results: DemoResults): string {
  const { script, css } = uplotAssets()
  const m = results.machine
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>@scale demo report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${css}
body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:72rem;color:#222;padding:0 1rem}
table{border-collapse:collapse;font-size:.85rem;margin:1rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1rem}
.chart{border:1px solid #eee;border-radius:6px;padding:.5rem}.chart h3{margin:.2rem 0 .5rem;font-size:1rem}
.meta{color:#555}</style></head>
<body>
<h1>@scale demo report</h1>
<p class="meta">Run ${escapeHtml(results.startedAt)} (${results.durationS} s${results.quick ? ', --quick' : ''}) on
${m.cpus} CPUs (${escapeHtml(m.cpuModel)}), ${m.memoryGiB} GiB, Node ${escapeHtml(m.node)}.
${results.settings.connections} connections, ${results.settings.users.toLocaleString('en')} seeded users.
Every figure was measured in this run; servers and load generator share the machine.</p>
${htmlTable(results)}
<h2>Per stage</h2><div class="charts" id="stage-charts"></div>
<h2>Drills</h2><div class="charts" id="drill-charts"></div>
<script>${script}</script>
<script type="application/json" id="results">${scriptJson(results)}</script>
<script>${CHART_SCRIPT}</script>
</body></html>
`
}

/** Runs in the page: reads the embedded results and draws every chart with uPlot. */
const CHART_SCRIPT = `
(function () {
  var results = JSON.parse(document.getElementById('results').textContent);
  var stages = results.stages.filter(function (s) { return !s.error; });
  var drawn = [];
  window.__charts = drawn;
  var palette = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed'];

  function box(parent, id, title) {
    var div = document.createElement('div');
    div.className = 'chart'; div.id = id;
    var h = document.createElement('h3'); h.textContent = title; div.appendChild(h);
    document.getElementById(parent).appendChild(div);
    return div;
  }
  function count(data) {
    var n = 0;
    for (var i = 1; i < data.length; i++) data[i].forEach(function (v) { if (v !== null && v !== undefined) n++; });
    return n;
  }
  function chart(parent, id, title, series, data, opts) {
    var div = box(parent, id, title);
    var plot = new uPlot(Object.assign({
      width: 500, height: 240,
      series: [{}].concat(series.map(function (s, i) {
        return Object.assign({ stroke: palette[i % palette.length], width: 2, points: { show: true, size: 7 } }, s);
      })),
    }, opts), data, div);
    drawn.push({ id: id, points: count(data), plot: plot });
  }
  /** uPlot hooks that draw a dashed vertical line and a label at each fault of a drill. */
  function faultLines(events) {
    return { draw: [function (u) {
      var ctx = u.ctx; ctx.save(); ctx.strokeStyle = '#111'; ctx.fillStyle = '#111'; ctx.setLineDash([4, 4]);
      ctx.font = (11 * devicePixelRatio) + 'px sans-serif';
      events.forEach(function (e, i) {
        var x = u.valToPos(e.atMs / 1000, 'x', true);
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        // One line per fault, so the labels of faults close in time do not overlap.
        ctx.fillText(e.what, x + 4, u.bbox.top + (12 + 13 * i) * devicePixelRatio);
      });
      ctx.restore();
    }] };
  }
  var xs = stages.map(function (s) { return s.number; });
  var stageAxis = {
    scales: { x: { time: false, range: [Math.min.apply(null, xs) - 0.5, Math.max.apply(null, xs) + 0.5] } },
    // Bare stage numbers under an axis label: 'stage 10' labels ran into each other at 500 px.
    axes: [{ label: 'stage', values: function (u, ticks) { return ticks.map(function (t) {
      var s = stages.find(function (s) { return s.number === t; }); return s ? String(t) : ''; }); },
      splits: function () { return xs; } }, { size: 64 }],
  };
  function measure(name) { return stages.map(function (s) {
    var v = s.measures[name]; return typeof v === 'number' ? v : null; }); }
  function pct(values) { return values.map(function (v) { return v === null ? null : Math.round(v * 1000) / 10; }); }
  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.5, 60] }) : undefined;

  chart('stage-charts', 'throughput', 'Throughput (requests/s, steady load)',
    [{ label: 'req/s', fill: '#2563eb55', paths: bars }],
    [xs, stages.map(function (s) { return s.load.throughputRps; })], stageAxis);
  chart('stage-charts', 'latency', 'Latency (ms)', [{ label: 'p50' }, { label: 'p99' }],
    [xs, stages.map(function (s) { return s.load.latencyMs.p50; }), stages.map(function (s) { return s.load.latencyMs.p99; })],
    stageAxis);
  chart('stage-charts', 'primary', 'Load on the primary', [
    { label: 'reads off the primary (%)', scale: '%' },
    { label: 'primary queries per 1k requests', scale: 'q' },
    { label: 'all database queries per 1k requests', scale: 'q' },
  ], [xs, pct(measure('readsOffPrimaryShare')), measure('primaryQueriesPer1kRequests'), measure('dbQueriesPer1kRequests')],
    Object.assign({}, stageAxis, { axes: [stageAxis.axes[0], { scale: '%' }, { scale: 'q', side: 1 }] }));
  chart('stage-charts', 'hit-ratios', 'Hit ratios (%)', [{ label: 'cache (Redis)' }, { label: 'edge (Varnish)' }],
    [xs, pct(measure('cacheHitRatio')), pct(measure('edgeHitRatio'))],
    Object.assign({}, stageAxis, { scales: { x: stageAxis.scales.x, y: { range: [0, 100] } } }));
  var drills = stages.filter(function (s) { return s.drill; });
  chart('stage-charts', 'drill-summary', 'Fault drills: failed requests and recovery time', [
    { label: 'failed requests', scale: 'n', paths: bars, fill: '#dc262655' },
    { label: 'recovery (ms)', scale: 'ms' },
  ], [xs, stages.map(function (s) { return s.drill ? s.drill.errors : null; }),
      stages.map(function (s) { return s.drill ? s.drill.recoveryMs : null; })],
    Object.assign({}, stageAxis, { axes: [stageAxis.axes[0], { scale: 'n' }, { scale: 'ms', side: 1 }] }));

  drills.forEach(function (s) {
    var t = s.drill.timeline;
    var seconds = t.map(function (b) { return b.t / 1000; });
    var perSecond = function (n) { return n * 4; }; // 250 ms slices
    var events = s.drill.events;
    chart('drill-charts', 'drill-' + s.number, 'Stage ' + s.number + ': ' + s.drill.name, [
      { label: 'answered/s', scale: 'r' },
      { label: 'failed/s', scale: 'r' },
      { label: 'mean latency (ms)', scale: 'ms' },
    ], [seconds, t.map(function (b) { return perSecond(b.ok); }), t.map(function (b) { return perSecond(b.failed); }),
        t.map(function (b) { return b.ok ? b.meanMs : null; })], {
      scales: { x: { time: false } },
      axes: [{ label: 'seconds' }, { scale: 'r' }, { scale: 'ms', side: 1 }],
      hooks: faultLines(events),
    });
  });
  // Stage 8: which region answered the clients of each region, over the drill (the failover).
  stages.filter(function (s) { return s.regionTimeline && s.regionTimeline.length && s.drill; }).forEach(function (s) {
    var slices = s.regionTimeline;
    var routes = [];
    slices.forEach(function (x) { Object.keys(x.served).forEach(function (r) { if (routes.indexOf(r) < 0) routes.push(r); }); });
    routes.sort();
    chart('drill-charts', 'regions-' + s.number, 'Stage ' + s.number + ': which region served whom (answers/s, client -> serving region)',
      routes.map(function (r) { return { label: r }; }),
      [slices.map(function (x) { return x.t / 1000; })].concat(routes.map(function (r) {
        return slices.map(function (x) { return (x.served[r] || 0) * 4; }); // 250 ms slices
      })), {
      scales: { x: { time: false } },
      axes: [{ label: 'seconds' }, {}],
      hooks: faultLines(s.drill.events),
    });
  });
  // Stage 9: the queue, the workers the scaling signal asked for, and job latency over time.
  stages.filter(function (s) { return s.queueTimeline && s.queueTimeline.length; }).forEach(function (s) {
    var q = s.queueTimeline;
    chart('drill-charts', 'queue-' + s.number, 'Stage ' + s.number + ': queue depth, workers and job latency', [
      { label: 'queue depth (jobs)', scale: 'n' },
      { label: 'workers running', scale: 'w' },
      { label: 'workers suggested', scale: 'w', dash: [4, 4] },
      { label: 'upload→thumbnail (ms)', scale: 'ms' },
    ], [q.map(function (x) { return x.t / 1000; }), q.map(function (x) { return x.backlog; }),
        q.map(function (x) { return x.workers; }), q.map(function (x) { return x.suggestedWorkers; }),
        q.map(function (x) { return x.latencyMs; })], {
      scales: { x: { time: false }, w: { range: [0, 5] } },
      axes: [{ label: 'seconds' }, { scale: 'n' }, { scale: 'w', side: 1 }, { scale: 'ms', side: 1 }],
    });
  });
  // Stage 10: what the live dashboard showed while the load ran.
  stages.filter(function (s) { return s.liveMetrics && s.liveMetrics.length; }).forEach(function (s) {
    var m = s.liveMetrics;
    chart('drill-charts', 'live-' + s.number, 'Stage ' + s.number + ': live dashboard (scraped /metrics)', [
      { label: 'requests/s', scale: 'r' },
      { label: '5xx/s', scale: 'r' },
      { label: 'mean latency (ms)', scale: 'ms' },
      { label: 'logged-in users', scale: 'r' },
    ], [m.map(function (x) { return x.t / 1000; }), m.map(function (x) { return x.requestsPerSecond; }),
        m.map(function (x) { return x.errorsPerSecond; }), m.map(function (x) { return x.meanLatencyMs; }),
        m.map(function (x) { return x.loggedInUsers; })], {
      scales: { x: { time: false } },
      axes: [{ label: 'seconds' }, { scale: 'r' }, { scale: 'ms', side: 1 }],
    });
  });
  document.body.setAttribute('data-charts-drawn', String(drawn.length));
})();
`
