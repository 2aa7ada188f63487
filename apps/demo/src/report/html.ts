import type { DemoResults } from '../runner/results.js'

export function renderHtml(results: DemoResults): string {
  return `<!doctype html><title>demo</title><pre>${JSON.stringify(results.stages.length)}</pre>`
}
