// Reading a case's timeline (GET /intake/cases/{id}/timeline): each entry's `details` is the
// event's own payload (shared/events/catalogue.py), so what the report said, the photos of each
// step and the deadlines each step set are all there, for anyone who may see the case.

import type { TimelineEntry } from './api/types'

/** The latest entry of `type` (e.g. `case.returned`), if any. */
export function latest(entries: readonly TimelineEntry[], type: string): TimelineEntry | undefined {
  for (let index = entries.length - 1; index >= 0; index--) if (entries[index]!.event_type === type) return entries[index]
  return undefined
}

export function text(entry: TimelineEntry | undefined, field: string): string | null {
  const value = entry?.details[field]
  return typeof value === 'string' ? value : null
}

export function flag(entry: TimelineEntry | undefined, field: string): boolean {
  return entry?.details[field] === true
}

export function photosOf(entry: TimelineEntry): string[] {
  const photos = entry.details.photos
  return Array.isArray(photos) ? photos.filter((p): p is string => typeof p === 'string') : []
}

/** The steps that carried photos, in order: the report, each handling report, each check. */
export function photoSteps(entries: readonly TimelineEntry[]): Array<{ entry: TimelineEntry; photos: string[] }> {
  return entries.map((entry) => ({ entry, photos: photosOf(entry) })).filter((step) => step.photos.length > 0)
}

/** The message key of an event type: `case.returned` → `events.case_returned`. */
export const eventKey = (type: string): string => `events.${type.replace(/\./g, '_')}`
