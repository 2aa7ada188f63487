import { startVarnish, type VarnishServer } from '@scale/testkit'

/** The CDN edge of stage 6: Varnish from the test kit in front of the load balancer. */
export type Edge = VarnishServer

export async function startEdge(originUrl: string): Promise<Edge> {
  const origin = new URL(originUrl)
  return startVarnish({ backend: { host: origin.hostname, port: Number(origin.port) } })
}

/** Drops one URL from the edge (`PURGE`); resolves with Varnish's status. */
export async function purge(edge: Edge, path: string): Promise<number> {
  return (await fetch(`${edge.url}${path}`, { method: 'PURGE' })).status
}

/** Drops every object tagged with one of `keys` (the origin's `Surrogate-Key`). */
export async function ban(edge: Edge, keys: string): Promise<number> {
  return (await fetch(edge.url, { method: 'BAN', headers: { 'surrogate-key': keys } })).status
}
