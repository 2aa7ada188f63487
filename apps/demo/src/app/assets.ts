import { createHash } from 'node:crypto'

/** The stylesheet of every page; served by the origin, cached by the edge. */
export const APP_CSS = `body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:48rem;color:#222}
h1{margin-bottom:.2rem}.address{color:#555}.photos{display:flex;flex-wrap:wrap;gap:.5rem}
.photos img{width:160px;height:120px;border-radius:6px}`

const CSS_VERSION = createHash('sha256').update(APP_CSS).digest('hex').slice(0, 10)

/**
 * Builds the URL of an image or stylesheet. The one place that knows where assets come from: the
 * CDN edge when `baseUrl` is set (stage 6), else the origin. Versioned with `?v=<content hash>` so
 * the edge may cache them for a year and a new file gets a new URL.
 */
export function createAssetUrls(baseUrl: string): (path: string) => string {
  const base = baseUrl.replace(/\/$/, '')
  return (path) => {
    const version = path === '/assets/app.css' ? `?v=${CSS_VERSION}` : ''
    return `${base}${path}${version}`
  }
}

/** A photo's "pixels": a small SVG drawn from its stored hue and caption. */
export function renderPhotoSvg(photo: { id: number; hue: number; caption: string }): string {
  const caption = photo.caption.replace(/[<>&"']/g, '')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${photo.hue},70%,60%)"/>
<stop offset="1" stop-color="hsl(${(photo.hue + 60) % 360},70%,35%)"/></linearGradient></defs>
<rect width="320" height="240" fill="url(#g)"/><circle cx="${80 + (photo.id % 160)}" cy="90" r="40" fill="rgba(255,255,255,.5)"/>
<text x="16" y="224" font-family="sans-serif" font-size="16" fill="#fff">${caption}</text></svg>`
}
