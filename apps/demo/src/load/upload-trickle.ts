import type { LoggedInUser } from './mixes.js'

/** One confirmed upload: the photo ID from the 201, its request ID and when the answer came. */
export interface ConfirmedUpload {
  photoId: number
  requestId: string | undefined
  ackedAt: number
}

export interface UploadTrickle {
  /** Every upload answered 201 with an ID: the ledger a lost-write audit checks. */
  confirmed: ConfirmedUpload[]
  /** Uploads sent without a 201 (failed, refused or unanswered). */
  failed: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Uploads by logged-in users, one at a time with `pauseMs` between, until `until` settles; each
 * user's `x-region` goes along when it has one (stage 8's geo router).
 */
export async function trickleUploads(
  url: string,
  users: (LoggedInUser & { region?: string })[],
  until: Promise<unknown>,
  pauseMs: number,
): Promise<UploadTrickle> {
  const result: UploadTrickle = { confirmed: [], failed: 0 }
  let done = false
  // The load's own failure is reported by whoever awaits it; here it only ends the uploads.
  const end = () => {
    done = true
  }
  until.then(end, end)
  for (let n = 0; !done; n++) {
    const user = users[n % users.length]
    if (!user) break
    const response = await fetch(`${url}/photos`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        cookie: user.cookie,
        ...(user.region && { 'x-region': user.region }),
      },
      body: JSON.stringify({ userId: user.userId, caption: `upload ${n}`, hue: (n * 53) % 360 }),
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined)
    const body = response?.status === 201 ? await response.json().catch(() => undefined) : undefined
    const photoId = (body as { id?: unknown } | undefined)?.id
    if (typeof photoId === 'number')
      result.confirmed.push({
        photoId,
        requestId: response?.headers.get('x-request-id') ?? undefined,
        ackedAt: Date.now(),
      })
    else {
      await response?.arrayBuffer().catch(() => {})
      result.failed++
    }
    await sleep(pauseMs)
  }
  return result
}
