import type { QueryPair } from './path-encoding.js'

/** Image parameters passed through to an image CDN. Units and values are the provider's. */
export interface ImageTransform {
  width?: number
  height?: number
  /** `cover`, `contain`, `crop`, `scale-down`, ... (passed through as is) */
  fit?: string
  /** `auto`, `webp`, `avif`, `jpg`, ... */
  format?: string
  quality?: number
  dpr?: number
}

/** How image parameters are put into the URL. */
export type ImageProvider = 'imgix' | 'cloudflare'

const IMGIX_NAMES: Record<keyof ImageTransform, string> = {
  width: 'w',
  height: 'h',
  fit: 'fit',
  format: 'fm',
  quality: 'q',
  dpr: 'dpr',
}
const ORDER: (keyof ImageTransform)[] = ['width', 'height', 'fit', 'format', 'quality', 'dpr']

function present(transform: ImageTransform): [keyof ImageTransform, string][] {
  return ORDER.filter((name) => transform[name] !== undefined).map((name) => [name, String(transform[name])])
}

/** imgix-style query parameters: `w=400&h=300&fit=crop&fm=webp&q=75&dpr=2`. */
export function imgixQuery(transform: ImageTransform): QueryPair[] {
  return present(transform).map(([name, value]) => [IMGIX_NAMES[name], value])
}

/**
 * Cloudflare Image Resizing's path prefix: `/cdn-cgi/image/width=400,height=300,fit=cover`.
 * Values keep only `A-Z a-z 0-9 . _ -` there, so the prefix needs no encoding and cannot break the URL.
 */
export function cloudflarePrefix(transform: ImageTransform): string {
  const options = present(transform).map(([name, value]) => `${name}=${value.replace(/[^\w.-]/g, '')}`)
  return options.length === 0 ? '' : `/cdn-cgi/image/${options.join(',')}`
}
