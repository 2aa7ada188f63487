import { createHash, createHmac } from 'node:crypto'

/** AWS credentials (an access key, or temporary ones with a session token). */
export interface AwsCredentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

export interface SigV4Request {
  method: string
  /** Absolute URL; its query is put in canonical order. */
  url: string
  /** Headers to sign besides `host` and `x-amz-date` (which are added). */
  headers: Record<string, string>
  body: string
  region: string
  service: string
  /** @default new Date() */
  date?: Date
}

const sha256Hex = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex')
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest()
// RFC 3986 encoding, as SigV4 wants it.
const awsEncode = (value: string) =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

/**
 * AWS Signature Version 4: returns the headers to send (`host`, `x-amz-date`, the given ones and
 * `authorization`). Checked against the example in AWS's SigV4 documentation.
 */
export function signV4(request: SigV4Request, credentials: AwsCredentials): Record<string, string> {
  const url = new URL(request.url)
  const amzDate = (request.date ?? new Date()).toISOString().replace(/[:-]|\.\d{3}/g, '')
  const day = amzDate.slice(0, 8)
  const headers: Record<string, string> = {
    ...Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v.trim()])),
    host: url.host,
    'x-amz-date': amzDate,
    ...(credentials.sessionToken ? { 'x-amz-security-token': credentials.sessionToken } : {}),
  }
  const names = Object.keys(headers).sort()
  const signedHeaders = names.join(';')
  const canonicalQuery = [...url.searchParams]
    .map(([k, v]) => [awsEncode(k), awsEncode(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&')
  const canonicalRequest = [
    request.method,
    url.pathname || '/',
    canonicalQuery,
    `${names.map((name) => `${name}:${headers[name]}`).join('\n')}\n`,
    signedHeaders,
    sha256Hex(request.body),
  ].join('\n')
  const scope = `${day}/${request.region}/${request.service}/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n')
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), request.region), request.service),
    'aws4_request',
  )
  const signature = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex')
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  }
}
