// The assessment service: indicators, rankings, the map's values (assessment/api.py).

import { getBlob, getJson, type Query } from './http'
import type {
  Bulletin,
  IndicatorAnswer,
  MapAnswer,
  MapLevel,
  PeriodChoice,
  RankedKind,
  RankingAnswer,
} from './types'

/** The query parameters that name a period, as every assessment route takes them. */
export function periodQuery(period: PeriodChoice): Query {
  return period.kind === 'range'
    ? { period: 'range', from: period.from, to: period.to }
    : { period: period.kind, date: period.date }
}

export interface Scope {
  kind: string
  id: string
}

export const CITY: Scope = { kind: 'city', id: 'city' }

export const fetchIndicators = (scope: Scope, period: PeriodChoice, signal?: AbortSignal): Promise<IndicatorAnswer> =>
  getJson('/assessment/indicators', { scope_kind: scope.kind, scope_id: scope.id, ...periodQuery(period) }, signal)

export interface RankingAsk {
  kind: RankedKind
  indicator: string
  period: PeriodChoice
  order?: 'desc' | 'asc'
  limit?: number
}

export const fetchRanking = (ask: RankingAsk, signal?: AbortSignal): Promise<RankingAnswer> =>
  getJson(
    '/assessment/rankings',
    {
      scope_kind: ask.kind,
      indicator: ask.indicator,
      order: ask.order ?? 'desc',
      limit: ask.limit,
      ...periodQuery(ask.period),
    },
    signal,
  )

export const fetchMapValues = (
  level: MapLevel,
  indicator: string,
  period: PeriodChoice,
  signal?: AbortSignal,
): Promise<MapAnswer> => getJson('/assessment/map', { scope_kind: level, indicator, ...periodQuery(period) }, signal)

/** The monthly bulletin (月度通报) of `month` (YYYY-MM). */
export const fetchBulletin = (month: string, signal?: AbortSignal): Promise<Bulletin> =>
  getJson(`/assessment/bulletins/${month}`, undefined, signal)

export const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'

/** The bulletin as an Excel workbook, fetched with the bearer token (a plain link cannot send it). */
export const fetchBulletinWorkbook = (month: string): Promise<Blob> => getBlob(`/assessment/bulletins/${month}.xlsx`, XLSX)
