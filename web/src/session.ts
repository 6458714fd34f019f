// Who is logged in, and the tokens that say so.
//
// The session is the browser's, not the tab's: every tab of the console shows one account and
// uses one token pair. A refresh token is good once, and the server ends the whole session when
// one comes back a second time (someone else must hold a copy), so where the pair is kept
// decides whether tabs can share it:
// - sessionStorage is per tab, and a duplicated tab starts with a copy of its parent's: each tab
//   would rotate its own copy unseen by the other, and the second to refresh would spend a spent
//   token and end the session of both.
// - localStorage is shared by the tabs but not kept coherent across them: a tab whose turn comes
//   just after another refreshed can still read the old pair (Chromium's tabs run in several
//   processes, each with its own copy for a while), and spend it.
// - IndexedDB is one database for all the tabs, and its transactions are ordered: the pair one
//   tab wrote before its turn ended is the pair the next tab reads. The pair lives there
//   (sessionStore.ts).
// Tabs refresh in turn (Web Locks), each reading the pair again once it is its turn: a tab that
// finds it already rotated by another takes the new pair instead of spending a token. Every
// change is announced to the other tabs: a rotated pair is taken up by all, a log-out ends the
// session in all, a log-in is followed by all. The price: closing the browser no longer ends the
// session; logging out does, or the end of the shift the server gave it. The access token is kept
// beside the refresh token so that one refresh serves every tab; it gives a reader of the storage
// nothing the refresh token does not.
//
// The access token (15 minutes) is renewed about a minute before it runs out, and once after a
// 401. Only a refresh the server refuses (401) ends a session: while the server cannot answer,
// the session is kept and the page says so.

import { shallowRef } from 'vue'

import * as auth from './api/auth'
import { ApiError, useCredentials, type Renewal } from './api/http'
import type { Me, TokenAnswer } from './api/types'
import { changePair, onPairChanged, readPair, type HeldSession } from './sessionStore'

const REFRESH_LOCK = 'citycase.refresh'
const RETRY_MS = 10_000

/** The account logged in, or null. */
export const user = shallowRef<Me | null>(null)

/** Why the session this browser keeps could not be confirmed when the page loaded (the server
 * unreachable, or failing), or null. Meanwhile the session is kept and asked for again. */
export const awaitingServer = shallowRef<unknown>(null)

let held: HeldSession | null = null
let renewTimer: ReturnType<typeof setTimeout> | undefined
let confirmTimer: ReturnType<typeof setTimeout> | undefined
let renewing: Promise<Renewal> | null = null
let restoring: Promise<void> | null = null
// The first load's navigation has run: a session confirmed after it must move the page itself.
let restored = false
// Counts sessions: an answer to a call made for a session that has since ended, or been replaced
// by a log-in, must not bring it back when it arrives.
let generation = 0
const endedListeners: Array<() => void> = []
const confirmedListeners: Array<() => Promise<unknown>> = []

function pairOf(answer: TokenAnswer, username: string): HeldSession {
  const now = Date.now()
  return {
    username,
    access_token: answer.access_token,
    refresh_token: answer.refresh_token,
    received_at: now,
    expires_at: now + answer.expires_in * 1000,
  }
}

function use(pair: HeldSession): void {
  held = pair
  // A minute early (a fifth of a short token's life), so no call waits on a refresh; each tab at
  // a moment of its own in that minute's first half, so that where Web Locks are missing the
  // first tab's new pair reaches the others before their own moment comes.
  const margin = Math.min(60_000, (pair.expires_at - pair.received_at) / 5)
  schedule(pair.expires_at - margin * (0.5 + Math.random() / 2) - Date.now())
}

function schedule(ms: number): void {
  clearTimeout(renewTimer)
  renewTimer = setTimeout(() => void renew(), Math.max(1000, ms))
}

/** The pair another tab stored. A rotation of this tab's session is simply used; a log-in there
 * is followed: by a tab that had no session, which asks who it now is, and by reloading a page
 * that showed another account, as everything on it was that account's. */
function takeUp(pair: HeldSession): void {
  if (pair.refresh_token === held?.refresh_token) return
  if (held && pair.username !== held.username) {
    location.reload()
    return
  }
  const followed = held === null
  use(pair)
  // Another tab was answered: a page waiting for the server need not wait for its next try.
  if (followed || awaitingServer.value !== null) void confirm()
}

/** Forgets the session in this tab; true when a page was showing it. */
function drop(): boolean {
  const shown = user.value !== null || awaitingServer.value !== null
  generation++
  held = null
  clearTimeout(renewTimer)
  clearTimeout(confirmTimer)
  user.value = null
  awaitingServer.value = null
  return shown
}

/** The session ended elsewhere (refused, or logged out in another tab): the page is told. */
function endHere(): void {
  if (drop()) endedListeners.forEach((listener) => listener())
}

/** Asks who the session speaks for. While the server cannot answer, the session is kept, the
 * page says so (`awaitingServer`) and asks again shortly: only a refused refresh ends it. */
async function confirm(): Promise<void> {
  clearTimeout(confirmTimer)
  const asked = generation
  let me: Me
  try {
    me = await auth.me()
  } catch (error) {
    if (asked !== generation) return
    awaitingServer.value = error
    confirmTimer = setTimeout(() => void confirm(), RETRY_MS)
    return
  }
  if (asked !== generation) return
  user.value = me
  // A page already showing (it waited for the server, or another tab logged in) goes where this
  // account may go before it shows again; the first load's own navigation does that itself.
  if (restored) await Promise.all(confirmedListeners.map((listener) => listener()))
  if (asked === generation) awaitingServer.value = null
}

/** Runs `critical` while no other tab of this browser runs its own. Web Locks exist only in a
 * secure context (https, or localhost); served over plain http from another host, the tabs go
 * without and are kept apart by their renewal moments alone (see `use`). */
async function inTurn<T>(critical: () => Promise<T>): Promise<T> {
  return navigator.locks ? await navigator.locks.request(REFRESH_LOCK, critical) : await critical()
}

/** A new token pair: 'renewed'; 'ended' when there is none or the server refused it (the session
 * is over); 'unavailable' when the server could not answer (the pair is kept, and tried again
 * shortly). Calls made at once share one refresh, and tabs refresh in turn: a refresh token is
 * good once, and a second use would end the session. */
export function renew(): Promise<Renewal> {
  if (!renewing) {
    const spent = held?.refresh_token ?? null
    const asked = generation
    renewing = inTurn(() => renewFrom(spent, asked)).finally(() => {
      renewing = null
    })
  }
  return renewing
}

/** The refresh itself, in this tab's turn; `spent` is the refresh token the tab held when it
 * asked, so a different one stored is another tab's newer pair. */
async function renewFrom(spent: string | null, asked: number): Promise<Renewal> {
  const current = await readPair()
  if (asked !== generation) return 'ended'
  if (!current) {
    endHere()
    return 'ended'
  }
  if (current.refresh_token !== spent) {
    takeUp(current)
    return 'renewed'
  }
  let answer: TokenAnswer
  try {
    answer = await auth.refresh(current.refresh_token)
  } catch (error) {
    if (asked !== generation) return 'ended'
    if (!(error instanceof ApiError && error.status === 401)) {
      schedule(RETRY_MS)
      return 'unavailable'
    }
    // Only the refused pair goes: another tab may have logged in meanwhile (log-ins take no turn).
    await changePair((found) => (found?.refresh_token === current.refresh_token ? null : undefined))
    endHere()
    return 'ended'
  }
  // Logging in or out takes no turn either: what another tab stored meanwhile wins over this
  // pair (a log-out ended this session on the server too).
  const pair = pairOf(answer, current.username)
  const found = await changePair((stored) => (stored?.refresh_token === current.refresh_token ? pair : undefined))
  if (asked !== generation) return 'ended'
  if (found?.refresh_token !== current.refresh_token) {
    if (!found) {
      endHere()
      return 'ended'
    }
    takeUp(found)
    return 'renewed'
  }
  use(pair)
  return 'renewed'
}

useCredentials({ token: () => held?.access_token ?? null, renew })

// Another tab changed the pair: rotated it, logged in, or logged out.
onPairChanged(() => {
  void readPair().then((pair) => {
    if (pair) takeUp(pair)
    else if (held) endHere()
  })
})

export async function logIn(username: string, password: string): Promise<Me> {
  const answer = await auth.logIn(username, password)
  generation++
  const pair = pairOf(answer, username)
  await changePair(() => pair)
  use(pair)
  user.value = await auth.me()
  return user.value
}

/** Ends the session on the server too, and in every tab; the page forgets it whatever the server
 * answers. */
export async function logOut(): Promise<void> {
  const refreshToken = held?.refresh_token
  drop()
  const found = await changePair(() => null).catch(() => null)
  const last = found?.refresh_token ?? refreshToken
  if (last) await auth.logOut(last).catch(() => undefined)
}

/** After a reload: the session this browser keeps, if any. Once per page. */
export function restore(): Promise<void> {
  restoring ??= (async () => {
    const pair = user.value ? null : await readPair().catch(() => null)
    if (pair) {
      use(pair)
      await confirm()
    }
    restored = true
  })()
  return restoring
}

/** Asks the server again at once (the retry of a page waiting for it). */
export const reconnect = (): Promise<void> => confirm()

/** Called when the server ends the session (refresh refused), or another tab logs out, while a
 * page was showing it. */
export function onSessionEnded(listener: () => void): void {
  endedListeners.push(listener)
}

/** Called when the session is confirmed under a page already showing: after it waited for the
 * server, or when another tab logged in. The page shows again once the listener's promise
 * settles (the navigation to where this account may go). */
export function onSessionConfirmed(listener: () => Promise<unknown>): void {
  confirmedListeners.push(listener)
}
