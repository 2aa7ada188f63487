import { createHash } from 'node:crypto'
import { createCdn } from '@scale/cdn-url'

/** The stylesheet of every page; served by the origin, cached by the edge. */
export const APP_CSS = `body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:48rem;color:#222}
h1{margin-bottom:.2rem}.address{color:#555}.photos{display:flex;flex-wrap:wrap;gap:.5rem}
.photos img{width:160px;height:120px;border-radius:6px}`

const CSS_VERSION = createHash('sha256').update(APP_CSS).digest('hex').slice(0, 10)

/**
 * Builds the URL of an image or stylesheet: the one place that knows where assets come from. From
 * stage 6 on, `baseUrl` is the CDN edge and @scale/cdn-url builds the URL on it; before, assets are
 * served by the origin itself. The stylesheet carries `?v=<content hash>`, so the edge may keep it
 * for a year and a changed file gets a new URL; a photo's ID never changes its content.
 */
export function createAssetUrls(baseUrl: string): (path: string) => string {
  const versionOf = (path: string) => (path === '/assets/app.css' ? CSS_VERSION : undefined)
  if (!baseUrl) {
    return (path) => {
      const version = versionOf(path)
      return version ? `${path}?v=${version}` : path
    }
  }
  const cdn = createCdn({ baseUrl, onMissingAsset: 'passthrough' })
  return (path) => {
    const version = versionOf(path)
    return cdn.url(path, version ? { version } : {})
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
