// How figures are written on screen. A rate is a fraction from the server (0.9372) and a
// percentage with two decimals here (93.72%), as the bulletins print it; no value is a dash.

import { shallowRef } from 'vue'
import { useI18n } from 'vue-i18n'

export const isRate = (indicator: string): boolean => indicator.endsWith('_rate')

export function formatFigure(indicator: string, value: number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  if (isRate(indicator)) return `${(value * 100).toFixed(2)}%`
  return Math.round(value).toLocaleString('en-US')
}

/** A period as answered, for a caption: one day, or first ~ last. */
export function formatPeriod(period: { start: string; end: string } | undefined): string {
  if (!period) return ''
  return period.start === period.end ? period.start : `${period.start} ~ ${period.end}`
}

/** The indicator's name for people: from the catalogue, or the server's name for one the
 * catalogue does not know yet. */
export function useIndicatorName(): (indicator: string) => string {
  const { t, te } = useI18n()
  return (indicator) => (te(`indicators.${indicator}`) ? t(`indicators.${indicator}`) : indicator)
}

/** The city's time zone: the city says which (GET /calendar/clock, read by clock.ts); until it
 * has, China's one zone, in which every city of it writes its times. Reactive, so times already on
 * screen follow the city's answer. */
export const cityTimeZone = shallowRef('Asia/Shanghai')

let zoneFormat: { zone: string; format: Intl.DateTimeFormat } | null = null

function timeFormat(): Intl.DateTimeFormat {
  const zone = cityTimeZone.value
  if (zoneFormat?.zone !== zone) {
    const format = new Intl.DateTimeFormat('sv-SE', {
      timeZone: zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
    zoneFormat = { zone, format }
  }
  return zoneFormat.format
}

/** An instant as the city's clock on the wall says it: 2026-01-05 17:30. */
export function formatTime(instant: string | number | null | undefined): string {
  if (instant === null || instant === undefined) return '—'
  return timeFormat().format(new Date(instant))
}

/** The city's day of an instant: 2026-01-05. */
export const cityDay = (instant: number): string => formatTime(instant).slice(0, 10)

/** How far the city's wall clock is ahead of UTC at an instant, in minutes (480 in Shanghai). */
function cityOffsetMinutes(instant: number): number {
  const minute = Math.floor(instant / 60_000) * 60_000
  return Math.round((Date.parse(`${formatTime(minute).replace(' ', 'T')}:00Z`) - minute) / 60_000)
}

/** The value of an <input type="datetime-local"> (the city's wall clock) as an instant with its
 * offset, as the API takes it: 2026-01-05T17:30:00+08:00. */
export function cityInstant(local: string): string {
  const wall = local.length === 16 ? `${local}:00` : local
  const asIfUtc = Date.parse(`${wall}Z`)
  // The offset at the wall reading taken as UTC is the city's except near a daylight-saving
  // change; taken again at the instant that offset gives, it is right there too.
  const offset = cityOffsetMinutes(asIfUtc - cityOffsetMinutes(asIfUtc) * 60_000)
  const hours = String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')
  const minutes = String(Math.abs(offset) % 60).padStart(2, '0')
  return `${wall}${offset < 0 ? '-' : '+'}${hours}:${minutes}`
}

/** The same wall-clock minute for an <input type="datetime-local">: 2026-01-05T17:30. */
export const toCityLocal = (instant: number): string => formatTime(instant).replace(' ', 'T')

/** A span of time in days, hours and minutes, largest two parts: 2天3小时, 3 h 20 min. Without
 * days for working time, whose days are not 24 hours: 35小时. */
export function useDuration(): (ms: number, options?: { days?: boolean }) => string {
  const { t } = useI18n()
  return (ms, { days = true } = {}) => {
    const minutes = Math.max(0, Math.round(Math.abs(ms) / 60_000))
    const perDay = days ? 1440 : Infinity
    const parts: Array<[number, string]> = [
      [days ? Math.floor(minutes / 1440) : 0, 'time.days'],
      [Math.floor((minutes % perDay) / 60), 'time.hours'],
      [minutes % 60, 'time.minutes'],
    ]
    const first = parts.findIndex(([value]) => value > 0)
    if (first < 0) return t('time.minutes', { n: 0 })
    return parts
      .slice(first, first + 2)
      .filter(([value]) => value > 0)
      .map(([value, key]) => t(key, { n: value }))
      .join(' ')
  }
}

/** Text for an ECharts tooltip, which sets its formatter's answer as HTML: the city's names are
 * data, never markup. */
export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
