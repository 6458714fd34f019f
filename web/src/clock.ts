// The city's clock as the browser can know it. Deadlines are the server's instants and "what is
// left" must be counted from the server's now, which is not the browser's when the machine's clock
// is off or the city runs on simulated time (a demonstration, the tests). No API answers the time,
// so the console reads it where the server writes it: the issue time (`iat`) of each access token
// it hands out, a few milliseconds before the browser receives it.

import { onBeforeUnmount, shallowRef, type ShallowRef } from 'vue'

let offsetMs = 0

/** Note the server's time in an access token just received (its `iat` claim, in seconds). */
export function noteServerTime(accessToken: string, receivedAt: number = Date.now()): void {
  const issuedAt = issuedAtOf(accessToken)
  if (issuedAt !== null) offsetMs = issuedAt * 1000 - receivedAt
}

function issuedAtOf(token: string): number | null {
  const payload = token.split('.')[1]
  if (!payload) return null
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'))
    const iat: unknown = (JSON.parse(json) as { iat?: unknown }).iat
    return typeof iat === 'number' ? iat : null
  } catch {
    return null
  }
}

/** The server's now, to within a second. */
export const serverNow = (): number => Date.now() + offsetMs

const ticking = shallowRef(serverNow())
let watchers = 0
let timer: ReturnType<typeof setInterval> | undefined

/** The server's now, kept current every half minute while a component that shows it lives
 * (countdowns); one timer for them all, however many deadlines a list shows. */
export function useServerNow(): Readonly<ShallowRef<number>> {
  if (watchers++ === 0) {
    ticking.value = serverNow()
    timer = setInterval(() => (ticking.value = serverNow()), 30_000)
  }
  onBeforeUnmount(() => {
    if (--watchers === 0) clearInterval(timer)
  })
  return ticking
}
