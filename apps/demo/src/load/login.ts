import { SEED_PASSWORD, seedUsername } from '../app/seed-data.js'
import type { LoggedInUser } from './mixes.js'

/** Logs `count` seeded users in through `url` (one request each, as a browser would) and keeps their cookies. */
export async function logInUsers(url: string, count: number, users: number): Promise<LoggedInUser[]> {
  const loggedIn: LoggedInUser[] = []
  for (let i = 0; i < count; i++) {
    // Spread over the data set, so the load side's users are not the first few rows.
    const userId = 1 + Math.floor((i * users) / count)
    const response = await fetch(`${url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: seedUsername(userId), password: SEED_PASSWORD }),
    })
    const setCookie = response.headers.get('set-cookie')
    if (response.status !== 200 || !setCookie) {
      throw new Error(`login of ${seedUsername(userId)} failed: ${response.status} ${await response.text()}`)
    }
    loggedIn.push({ userId, cookie: setCookie.split(';')[0]! })
  }
  return loggedIn
}
