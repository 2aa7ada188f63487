import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DemoResults } from '../runner/results.js'
import { renderHtml } from './html.js'
import { renderMarkdown } from './markdown.js'

/** Renders both reports from the results alone; returns the file names written. */
export function writeReports(dir: string, results: DemoResults): string[] {
  writeFileSync(join(dir, 'REPORT.md'), renderMarkdown(results))
  writeFileSync(join(dir, 'index.html'), renderHtml(results))
  return ['REPORT.md', 'index.html']
}
