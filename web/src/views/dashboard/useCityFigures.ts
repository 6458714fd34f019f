// The city's figures for the dashboard: today's and the picked period's, kept live.
//
// Today's figures come from a live feed of the day (GET /assessment/live?period=day). The picked
// period's come from GET /assessment/indicators, and from a second feed while that period is the
// current week or month (the current day shares today's feed); a past period or a range is
// fetched again when the live figures move. Each change also calls `onChange`, which the
// dashboard throttles into refreshing its map and rankings.

import { onBeforeUnmount, ref, shallowRef, watch, type Ref } from 'vue'

import { CITY, fetchIndicators } from '@/api/assessment'
import { openFeed, type Feed, type FeedState } from '@/api/live'
import type { IndicatorAnswer, PeriodChoice, PeriodKind } from '@/api/types'
import { isAbort, latestOnly } from '@/pacing'

const LIVE_PATH = '/assessment/live'
// How often the server looks at the counters for this page (it sends only what changed): half a
// second keeps a closure anywhere in the city on the wall screen within a second or so, for one
// counter-row read per look.
const LIVE_INTERVAL_S = 0.5

const sameFigures = (a: IndicatorAnswer | null, b: IndicatorAnswer): boolean =>
  a !== null && a.period.start === b.period.start && JSON.stringify(a.counters) === JSON.stringify(b.counters)

const holds = (answer: IndicatorAnswer, day: string): boolean => answer.period.start <= day && day <= answer.period.end

export function useCityFigures(period: Ref<PeriodChoice>, onChange: () => void) {
  const today = shallowRef<IndicatorAnswer | null>(null)
  const current = shallowRef<IndicatorAnswer | null>(null)
  const error = ref<unknown>(null)
  const dayState = ref<FeedState>('connecting')
  const periodState = ref<FeedState | null>(null)
  /** Which live feed the picked period follows: the day's, one of its own, or none. */
  let follows: 'day' | 'own' | null = null
  let periodFeed: Feed | null = null
  const requests = latestOnly()

  function received(data: string, apply: (answer: IndicatorAnswer) => boolean): void {
    const answer = JSON.parse(data) as IndicatorAnswer
    if (apply(answer)) onChange()
  }

  const dayFeed = openFeed({
    path: LIVE_PATH,
    query: { period: 'day', interval: LIVE_INTERVAL_S },
    onState: (state) => (dayState.value = state),
    onEvent: (event) =>
      received(event.data, (answer) => {
        if (sameFigures(today.value, answer)) return false
        today.value = answer
        if (follows === 'day') current.value = answer
        return true
      }),
  })

  function followOwnFeed(kind: PeriodKind): void {
    periodFeed = openFeed({
      path: LIVE_PATH,
      query: { period: kind, interval: LIVE_INTERVAL_S },
      onState: (state) => (periodState.value = state),
      onEvent: (event) =>
        received(event.data, (answer) => {
          if (sameFigures(current.value, answer)) return false
          current.value = answer
          return true
        }),
    })
  }

  function closePeriodFeed(): void {
    periodFeed?.close()
    periodFeed = null
    periodState.value = null
  }

  /** The picked period's figures; then, if it holds today, the live feed that keeps them. */
  async function loadCurrent(): Promise<void> {
    const signal = requests.next()
    try {
      const [answer, day] = await Promise.all([
        fetchIndicators(CITY, period.value, signal),
        today.value ? Promise.resolve(today.value) : fetchIndicators(CITY, { kind: 'day' }, signal),
      ])
      if (!today.value) today.value = day
      current.value = answer
      error.value = null
      const live = answer.period.kind !== 'range' && holds(answer, today.value.period.start)
      const wanted = !live ? null : answer.period.kind === 'day' ? 'day' : 'own'
      if (wanted !== follows || wanted === 'own') {
        closePeriodFeed()
        follows = wanted
        if (wanted === 'own') followOwnFeed(answer.period.kind as PeriodKind)
      }
    } catch (failure) {
      if (!isAbort(failure)) error.value = failure
    }
  }

  /** After a change: a period no feed keeps is fetched again. */
  function refreshUnfollowed(): void {
    if (follows === null) void loadCurrent()
  }

  // A new period: the old period's feed stops writing at once, not once the new figures came
  // (if they never come, its figures must not stand under the new period's name).
  watch(
    period,
    () => {
      closePeriodFeed()
      follows = null
      void loadCurrent()
    },
    { immediate: true },
  )

  onBeforeUnmount(() => {
    requests.cancel()
    dayFeed.close()
    closePeriodFeed()
  })

  /** The worse of the feeds' states, for the badge. */
  const liveState = (): FeedState => {
    const states = [dayState.value, periodState.value].filter((s): s is FeedState => s !== null)
    for (const worst of ['ended', 'retrying', 'connecting'] as const) if (states.includes(worst)) return worst
    return 'open'
  }

  return { today, current, error, liveState, refreshUnfollowed, reload: loadCurrent }
}
