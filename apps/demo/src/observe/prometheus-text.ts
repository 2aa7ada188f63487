/** One sample of a Prometheus text exposition: `name{labels} value`. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Parses the text format (comments and malformed lines skipped). */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const match = LINE.exec(line)
    if (!match) continue
    const value = Number(match[3])
    if (!Number.isFinite(value)) continue
    const labels: Record<string, string> = {}
    for (const [, key, val] of (match[2] ?? '').matchAll(LABEL)) if (key) labels[key] = val ?? ''
    samples.push({ name: match[1] ?? '', labels, value })
  }
  return samples
}

/** Sum of every sample called `name` whose labels pass `where`. */
export function sumOf(
  samples: Sample[],
  name: string,
  where: (labels: Record<string, string>) => boolean = () => true,
) {
  return samples.reduce((total, s) => (s.name === name && where(s.labels) ? total + s.value : total), 0)
}
