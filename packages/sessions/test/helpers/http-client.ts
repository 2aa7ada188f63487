import { request } from 'node:http'

export interface HttpResult {
  status: number
  body: string
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON bodies and assert on them
  json: () => any
  setCookies: string[]
}

/** One HTTP request over a real socket (no keep-alive, so nothing outlives the test). */
export function httpRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        const raw = res.headers['set-cookie']
        resolve({
          status: res.statusCode ?? 0,
          body,
          json: () => JSON.parse(body),
          setCookies: Array.isArray(raw) ? raw : raw ? [raw] : [],
        })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** A browser-like client for one cookie: sends it, and follows Set-Cookie (including deletion). */
export class CookieClient {
  cookie: string | undefined
  readonly #name: string
  port: number

  constructor(port: number, name: string) {
    this.port = port
    this.#name = name
  }

  async send(method: string, path: string, headers: Record<string, string> = {}): Promise<HttpResult> {
    const all = { ...headers }
    if (this.cookie !== undefined) all.cookie = `${this.#name}=${this.cookie}`
    const result = await httpRequest(this.port, method, path, all)
    for (const line of result.setCookies) {
      const [pair] = line.split(';')
      const eq = (pair as string).indexOf('=')
      if ((pair as string).slice(0, eq) !== this.#name) continue
      const value = (pair as string).slice(eq + 1)
      this.cookie = /Max-Age=0/.test(line) || value === '' ? undefined : value
    }
    return result
  }
}
