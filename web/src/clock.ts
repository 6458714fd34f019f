// The city's clock as the browser can know it. Deadlines are the server's instants, and what is
// left of one must be counted from the server's now — not the browser's when the machine's clock
// is off or the city runs on simulated time (a demonstration, the tests) — and in the deadline's
// own basis: most limits run in the city's working time, which only the city's calendar knows
// (working hours, holidays, make-up working days, provisional years). So the console asks the
// city (GET /calendar/clock) for its now, its time zone and its working periods around today, and
// sums the periods between now and a deadline as the services counted it.

import { onBeforeUnmount, shallowRef, type ShallowRef } from 'vue'

import { fetchCityClock, type CityClock } from './api/calendar'
import { cityDay, cityTimeZone } from './format'

// Often enough for a drifting machine clock and a simulated city's jumps; the periods reach
// weeks either way, so an answer stays good long after.
const READ_EVERY_MS = 10 * 60_000
const RETRY_MS = 30_000

let offsetMs = 0

/** The server's now, to within the half round trip of the last answer. */
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

/** The working periods the city last sent (ms since the epoch), each with its city day; counted
 * between `start` and `end` only. */
interface WorkingPeriods {
  start: number
  end: number
  periods: ReadonlyArray<{ start: number; end: number; day: string }>
}

const known = shallowRef<WorkingPeriods | null>(null)

function adopt(answer: CityClock, sent: number, received: number): void {
  // The server read its clock somewhere in the round trip: the midpoint is the best guess.
  offsetMs = Date.parse(answer.now) - (sent + received) / 2
  cityTimeZone.value = answer.timezone
  known.value = {
    start: Date.parse(answer.start),
    end: Date.parse(answer.end),
    periods: answer.working_periods.map((period) => {
      const start = Date.parse(period.start)
      return { start, end: Date.parse(period.end), day: cityDay(start) }
    }),
  }
  ticking.value = serverNow()
}

let readTimer: ReturnType<typeof setTimeout> | undefined
// Counts starts and stops: an answer to a read of a session that has ended is dropped.
let following = 0

/** Read the city's clock at once and every ten minutes while someone is logged in (the route
 * wants a caller); `false` stops reading. The last answer stays until the next one: a read that
 * fails is tried again in half a minute. */
export function followCityClock(loggedIn: boolean): void {
  clearTimeout(readTimer)
  const session = ++following
  if (!loggedIn) return
  const read = async (): Promise<void> => {
    let next = READ_EVERY_MS
    try {
      const sent = Date.now()
      const answer = await fetchCityClock()
      if (session === following) adopt(answer, sent, Date.now())
    } catch {
      next = RETRY_MS
    }
    if (session === following) readTimer = setTimeout(() => void read(), next)
  }
  void read()
}

/** Working time between two instants: exactly (`ms`), or at least so many whole working days
 * when the city's periods do not reach that far; null before the city's first answer. */
export type WorkingTime = { ms: number } | { atLeastDays: number } | null

/** The working time between `from` and `to` (`from` ≤ `to`): the sum of the city's working
 * periods between them; when one of them lies beyond the periods the city sent, the whole working
 * days known to lie between them (maybe none), never a figure the periods cannot support. */
export function workingTimeBetween(from: number, to: number): WorkingTime {
  const sent = known.value
  if (!sent) return null
  if (from >= sent.start && to <= sent.end) {
    let ms = 0
    for (const period of sent.periods) ms += Math.max(0, Math.min(period.end, to) - Math.max(period.start, from))
    return { ms }
  }
  const partly = new Set<string>()
  const whole = new Set<string>()
  for (const period of sent.periods) {
    if (period.start >= from && period.end <= to) whole.add(period.day)
    else partly.add(period.day)
  }
  return { atLeastDays: [...whole].filter((day) => !partly.has(day)).length }
}
