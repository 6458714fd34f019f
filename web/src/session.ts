// Who is logged in, and the tokens that say so.
//
// The access token (15 minutes) lives in memory only; the refresh token, good once and for a
// shift, in sessionStorage, so a reload of the tab keeps the session and closing the tab ends
// it. The access token is renewed a minute before it runs out, and once after a 401.

import { shallowRef } from 'vue'

import * as auth from './api/auth'
import { ApiError, useCredentials, type Renewal } from './api/http'
import type { Me, TokenAnswer } from './api/types'
import { noteServerTime } from './clock'

const REFRESH_KEY = 'citycase.refresh_token'

/** The account logged in, or null. */
export const user = shallowRef<Me | null>(null)

let accessToken: string | null = null
let renewTimer: ReturnType<typeof setTimeout> | undefined
let renewing: Promise<Renewal> | null = null
let restoring: Promise<void> | null = null
// Counts sessions: a refresh that was under way when the user logged out must not bring the
// session back when its answer arrives.
let generation = 0
const endedListeners: Array<() => void> = []

function schedule(seconds: number): void {
  clearTimeout(renewTimer)
  renewTimer = setTimeout(() => void renew().then(recoverUser), seconds * 1000)
}

/** After a reload while the server was away, nobody is logged in until a refresh succeeds. */
async function recoverUser(renewal: Renewal): Promise<void> {
  if (renewal !== 'renewed' || user.value) return
  const asked = generation
  const me = await auth.me().catch(() => null)
  if (asked === generation) user.value = me
}

function adopt(answer: TokenAnswer): void {
  accessToken = answer.access_token
  noteServerTime(answer.access_token)
  sessionStorage.setItem(REFRESH_KEY, answer.refresh_token)
  // A minute early (a fifth of a short token's life), so no call waits on a refresh.
  const early = Math.min(60, answer.expires_in / 5)
  schedule(Math.max(5, answer.expires_in - early))
}

function forget(): void {
  generation++
  accessToken = null
  clearTimeout(renewTimer)
  sessionStorage.removeItem(REFRESH_KEY)
  user.value = null
}

/** A new token pair for the refresh token: 'renewed'; 'ended' when there is none or the server
 * refused it (the session is over); 'unavailable' when the server could not answer (the refresh
 * token is kept, and tried again shortly). Calls made at once share one refresh: a refresh token
 * is good once, and a second use would end the session. */
export function renew(): Promise<Renewal> {
  renewing ??= (async (): Promise<Renewal> => {
    const refreshToken = sessionStorage.getItem(REFRESH_KEY)
    if (!refreshToken) return 'ended'
    const asked = generation
    try {
      const answer = await auth.refresh(refreshToken)
      if (asked !== generation) return 'ended'
      adopt(answer)
      return 'renewed'
    } catch (error) {
      if (asked !== generation) return 'ended'
      if (error instanceof ApiError && error.status === 401) {
        const wasIn = user.value !== null
        forget()
        if (wasIn) endedListeners.forEach((listener) => listener())
        return 'ended'
      }
      schedule(10)
      return 'unavailable'
    }
  })().finally(() => {
    renewing = null
  })
  return renewing
}

useCredentials({ token: () => accessToken, renew })

export async function logIn(username: string, password: string): Promise<Me> {
  adopt(await auth.logIn(username, password))
  user.value = await auth.me()
  return user.value
}

/** Ends the session on the server too; the page forgets it whatever the server answers. */
export async function logOut(): Promise<void> {
  const refreshToken = sessionStorage.getItem(REFRESH_KEY)
  forget()
  if (refreshToken) await auth.logOut(refreshToken).catch(() => undefined)
}

/** After a reload: the session the tab's refresh token still holds, if any. Once per page. */
export function restore(): Promise<void> {
  restoring ??= (async () => {
    if (user.value || !sessionStorage.getItem(REFRESH_KEY)) return
    await recoverUser(await renew())
  })()
  return restoring
}

/** Called when the server ends the session (refresh refused) while someone was logged in. */
export function onSessionEnded(listener: () => void): void {
  endedListeners.push(listener)
}
