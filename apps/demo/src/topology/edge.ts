/** The CDN edge of stage 6 (Varnish from the test kit). */
export interface Edge {
  url: string
  stop(): Promise<void>
}

export async function startEdge(_originUrl: string): Promise<Edge> {
  throw new Error('the Varnish edge arrives with the test kit startVarnish')
}
