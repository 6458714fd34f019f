// The city's calendar (services/runtime/calendar.py): its clock — now, time zone and working
// periods — for any caller who has logged in.

import { getJson } from './http'

/** A stretch of working time, as UTC instants. */
export interface WorkingPeriod {
  start: string
  end: string
}

/** The city's now and its working periods from `start` to `end` (cut short at `missing_year`'s
 * first day when the calendar does not know that year). */
export interface CityClock {
  now: string
  timezone: string
  start: string
  end: string
  missing_year: number | null
  working_periods: WorkingPeriod[]
}

export const fetchCityClock = (): Promise<CityClock> => getJson<CityClock>('/calendar/clock')
