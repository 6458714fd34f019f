// The deadlines of a case, read from the case file and its timeline: each step's limit as the
// server set it (and counted again, when a provisional year became official), whether it is
// provisional, and when the step was done.

import type { CaseRecord, TimelineEntry } from '@/api/types'
import { flag, latest, text } from '@/timeline'

export type Step = 'filing' | 'dispatch' | 'handling' | 'check'

export interface StepDeadline {
  step: Step
  deadline: string | null
  provisional: boolean
  doneAt: string | null
  paused: boolean
}

const atOrAfter = (entry: TimelineEntry, since: TimelineEntry): boolean => Date.parse(entry.at) >= Date.parse(since.at)

/** The last entry that passes `test` at or after `since`, if any. */
function lastSince(
  timeline: readonly TimelineEntry[],
  since: TimelineEntry,
  test: (entry: TimelineEntry) => boolean,
): TimelineEntry | undefined {
  return [...timeline].reverse().find((entry) => test(entry) && atOrAfter(entry, since))
}

/** A step's deadline as the event `set` set it (the `fields` of its payload), moved by any
 * `case.deadline_recomputed` of its kind since. */
function stepOf(
  timeline: readonly TimelineEntry[],
  step: Step,
  set: TimelineEntry | undefined,
  fields: { deadline: string; provisional: string },
  doneAt: string | null,
): StepDeadline | null {
  if (!set || !text(set, fields.deadline)) return null
  const moved = lastSince(timeline, set, (e) => e.event_type === 'case.deadline_recomputed' && e.details.kind === step)
  return {
    step,
    deadline: moved ? text(moved, 'deadline') : text(set, fields.deadline),
    provisional: moved ? flag(moved, 'provisional') : flag(set, fields.provisional),
    doneAt,
    paused: false,
  }
}

export function deadlinesOf(record: CaseRecord, timeline: readonly TimelineEntry[]): StepDeadline[] {
  const filed = latest(timeline, 'case.filed')
  const firstDispatch = timeline.find((e) => e.event_type === 'case.dispatched')
  const selfHandled = flag(filed, 'self_handled')
  const checkSet = latest(timeline, 'case.check_requested')
  const checkDone = checkSet
    ? lastSince(timeline, checkSet, (e) => e.event_type === 'case.check_passed' || e.event_type === 'case.check_failed')
    : undefined
  const steps: Array<StepDeadline | null> = [
    stepOf(timeline, 'filing', filed, { deadline: 'filing_deadline', provisional: 'filing_deadline_provisional' }, filed?.at ?? null),
    selfHandled
      ? null
      : stepOf(
          timeline,
          'dispatch',
          filed,
          { deadline: 'dispatch_deadline', provisional: 'dispatch_deadline_provisional' },
          firstDispatch?.at ?? null,
        ),
    record.handling_deadline
      ? {
          step: 'handling',
          deadline: record.handling_deadline,
          provisional: record.handling_deadline_provisional,
          doneAt: record.closed_at,
          paused: record.status === 'suspended' || record.status === 'cancelled',
        }
      : null,
    stepOf(timeline, 'check', checkSet, { deadline: 'check_deadline', provisional: 'provisional' }, checkDone?.at ?? null),
  ]
  return steps.filter((step): step is StepDeadline => step !== null)
}
