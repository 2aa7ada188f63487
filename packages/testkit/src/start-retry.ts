/**
 * Runs `start` and, if it fails, once more. A server that dies or hangs while it starts on a
 * loaded machine (a cluster node that never answered PING in 30 s failed a whole suite) usually
 * starts fine on a second try; each try picks fresh ports. The second failure is thrown with the
 * first one's message appended, so both logs reach the test output.
 */
export async function startWithOneRetry<T>(start: () => Promise<T>): Promise<T> {
  try {
    return await start()
  } catch (first) {
    try {
      return await start()
    } catch (second) {
      if (second instanceof Error && first instanceof Error) {
        second.message += `\n(this was the second try on fresh ports; the first failed too: ${first.message})`
      }
      throw second
    }
  }
}
