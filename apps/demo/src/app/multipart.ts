/** One part of a multipart/form-data body. */
export interface FormPart {
  name: string
  filename: string | undefined
  contentType: string | undefined
  data: Buffer
}

/**
 * Splits a multipart/form-data body (RFC 7578) into its parts. Enough for the demo's one upload
 * form: the whole body is in memory (the route's body limit bounds it). Returns undefined when the
 * body is not well-formed multipart for `boundary`.
 */
export function parseMultipart(body: Buffer, contentType: string): FormPart[] | undefined {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1]
  if (!boundary) return undefined
  const delimiter = Buffer.from(`--${boundary}`)
  const parts: FormPart[] = []
  let at = body.indexOf(delimiter)
  if (at < 0) return undefined
  while (true) {
    const start = at + delimiter.length
    if (body.subarray(start, start + 2).toString() === '--') return parts // closing delimiter
    const headerEnd = body.indexOf('\r\n\r\n', start)
    const next = body.indexOf(delimiter, start)
    if (headerEnd < 0 || next < 0 || headerEnd > next) return undefined
    const headers = body.subarray(start + 2, headerEnd).toString('utf8')
    const disposition = /content-disposition:[^\r\n]*/i.exec(headers)?.[0] ?? ''
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1]
    if (name === undefined) return undefined
    parts.push({
      name,
      filename: /\bfilename="([^"]*)"/i.exec(disposition)?.[1],
      contentType: /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1]?.trim(),
      // The part's data ends with the CRLF before the next delimiter.
      data: body.subarray(headerEnd + 4, next - 2),
    })
    at = next
  }
}
