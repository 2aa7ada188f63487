import sharp from 'sharp'

/** Edge of the square thumbnail, px. */
export const THUMBNAIL_SIZE = 160

/** The photo's "content": a noisy 320×240 image tinted by its hue (the demo stores no originals). */
function original(hue: number) {
  const h = ((hue % 360) + 360) % 360
  const channel = (n: number) => {
    const k = (n + h / 30) % 12
    return Math.round(255 * (0.5 - 0.5 * Math.max(-1, Math.min(k - 3, 9 - k, 1))))
  }
  return sharp({
    create: {
      width: 320,
      height: 240,
      channels: 3,
      background: '#808080',
      noise: { type: 'gaussian', mean: 128, sigma: 48 },
    },
  }).tint({ r: channel(0), g: channel(8), b: channel(4) })
}

/**
 * The worker's image work: resize and crop to a square, blur away the noise, sharpen, JPEG. From
 * the uploaded image when there is one (the browser pages), else from the generated one.
 */
export async function makeThumbnail(hue: number, uploaded?: Buffer): Promise<Buffer> {
  const source = uploaded
    ? sharp(uploaded)
    : await original(hue)
        .raw()
        .toBuffer({ resolveWithObject: true })
        .then(({ data, info }) =>
          sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }),
        )
  return source
    .rotate()
    .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'cover' })
    .blur(1.5)
    .sharpen({ sigma: 1 })
    .jpeg({ quality: 75 })
    .toBuffer()
}
