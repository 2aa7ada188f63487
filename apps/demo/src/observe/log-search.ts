import { readdirSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'

/** One log line that mentions a request, and the process that wrote it. */
export interface TraceLine {
  process: string
  line: string
}

/**
 * The run's log aggregator: every process (HAProxy, web servers, workers) writes its lines to a
 * file of the stage's log directory; this finds every line that names `requestId`, in all of them.
 */
export function searchLogs(files: string[], requestId: string): TraceLine[] {
  const found: TraceLine[] = []
  for (const file of files) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    const process = basename(file).replace(/\.log$/, '')
    for (const line of text.split('\n'))
      if (line.includes(requestId)) found.push({ process, line: line.slice(0, 400) })
  }
  return found
}

/** The `.log` files of a directory. */
export function logFilesIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => join(dir, f))
  } catch {
    return []
  }
}
