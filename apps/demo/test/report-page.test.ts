import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { renderHtml } from '../src/report/html.js'
import { renderMarkdown } from '../src/report/markdown.js'
import { type DemoResults, isFailed } from '../src/runner/results.js'
import type { StageResult } from '../src/stages/stage.js'
import { launchChromium } from './chromium.js'

const here = fileURLToPath(new URL('.', import.meta.url))
/** Screenshots and the rendered page land here (gitignored). */
const OUTPUT = join(here, '..', 'test-output')

/** A results.json from a real `pnpm demo --quick` run, kept as a fixture. */
const results = JSON.parse(readFileSync(join(here, 'fixtures', 'results.json'), 'utf8')) as DemoResults

describe('the HTML report', () => {
  it('draws every chart with data in headless Chromium, offline', async () => {
    mkdirSync(OUTPUT, { recursive: true })
    const page = join(OUTPUT, 'index.html')
    writeFileSync(page, renderHtml(results))
    const browser = await launchChromium()
    try {
      const context = await browser.newContext({ offline: true, viewport: { width: 1280, height: 900 } })
      const tab = await context.newPage()
      const errors: string[] = []
      tab.on('pageerror', (error) => errors.push(error.message))
      await tab.goto(pathToFileURL(page).href)
      await tab.waitForSelector('body[data-charts-drawn]')
      const charts = await tab.evaluate(() => {
        const drawn = (window as unknown as { __charts: { id: string; points: number }[] }).__charts
        return drawn.map(({ id, points }) => {
          // A chart drew data when its plot canvas has pixels of the series colours, not only axes.
          const canvas = document.querySelector<HTMLCanvasElement>(`#${id} canvas`)!
          const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height)
          let coloured = 0
          for (let i = 0; i < data.length; i += 4) {
            const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!]
            if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++
          }
          return { id, points, coloured }
        })
      })
      await tab.screenshot({ path: join(OUTPUT, 'report.png'), fullPage: true })

      expect(errors).toEqual([])
      const ran = results.stages.filter((s) => !isFailed(s)) as StageResult[]
      // The fixture is a whole run: every stage, and the timelines of stages 8, 9 and 10.
      expect(ran.map((s) => s.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
      expect(charts.map((c) => c.id)).toEqual([
        'throughput',
        'latency',
        'primary',
        'hit-ratios',
        'drill-summary',
        ...ran.filter((s) => s.drill).map((s) => `drill-${s.number}`),
        'regions-8',
        'queue-9',
        'live-10',
      ])
      for (const chart of charts) {
        expect(chart.points, `${chart.id} has data`).toBeGreaterThan(0)
        expect(chart.coloured, `${chart.id} drew its series`).toBeGreaterThan(50)
      }
      // The table carries the run's figures and machine.
      const table = await tab.textContent('table')
      expect(table).toContain(
        String(
          (results.stages[0] as { load: { throughputRps: number } }).load.throughputRps.toLocaleString('en'),
        ),
      )
      expect(await tab.textContent('.meta')).toContain(`${results.machine.cpus} CPUs`)
    } finally {
      await browser.close()
    }
  })

  it('the Markdown report has a row per stage, every figure from the results', () => {
    const markdown = renderMarkdown(results)
    for (const stage of results.stages) expect(markdown).toContain(`| ${stage.number} ${stage.title} |`)
    // Every stage's own figures and its drill's, by name and value.
    for (const stage of results.stages.filter((s) => !isFailed(s)) as StageResult[]) {
      for (const [name, value] of Object.entries({ ...stage.measures, ...stage.drill?.measures }))
        expect(markdown, `stage ${stage.number} ${name}`).toContain(`\`${name}\` ${value}`)
    }
    expect(markdown).toContain(results.startedAt)
    expect(markdown).not.toContain('undefined')
    expect(markdown).not.toContain('NaN')
  })
})
