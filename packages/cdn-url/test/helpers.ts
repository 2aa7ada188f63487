import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A real HTTP server on a free loopback port; `handler` sees exactly what arrived. */
export interface TestServer {
  url: string
  port: number
  server: Server
  close(): Promise<void>
}

export async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
): Promise<TestServer> {
  // The signing properties generate paths of up to 5 × 600 graphemes: percent-encoded, a request
  // line can pass Node's 16 KiB header limit, and its 431 (then minutes of shrinking over HTTP) is
  // about this test server, not about signing (real CDNs cap URLs lower still: CloudFront at 8 KiB).
  const server = createServer({ maxHeaderSize: 1024 * 1024 }, handler)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  const actual = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    server,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

export const SECRET_A = 'secret-key-number-one-0123456789abcdef'
export const SECRET_B = 'secret-key-number-two-0123456789abcdef'
