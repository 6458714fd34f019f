// The intake service (intake/api.py): reports waiting for a decision, filing (立案) and
// rejecting (不予立案), verification tasks (核实), and the case file: search, one case, its
// timeline.

import { getJson, request, type Query } from './http'
import { fetchAllPages, type WorkList } from './pages'
import type {
  CasePage,
  CaseRecord,
  CaseStatus,
  RejectionReason,
  Report,
  ReportSource,
  ReportStatus,
  TimelineEntry,
} from './types'

/** Reports in one status, oldest first (the operator's queue), every page of them. */
export const fetchReports = (status: ReportStatus, signal?: AbortSignal): Promise<WorkList<Report>> =>
  fetchAllPages('/intake/reports', { status, limit: 500 }, signal)

export const fileReport = (id: string): Promise<Report> => request('POST', `/intake/reports/${id}/file`)

export const rejectReport = (id: string, reasonCode: RejectionReason, reason: string): Promise<Report> =>
  request('POST', `/intake/reports/${id}/reject`, { json: { reason_code: reasonCode, reason } })

/** The calling inspector's open verification tasks, oldest first, every page of them. */
export const fetchVerifications = (signal?: AbortSignal): Promise<WorkList<Report>> =>
  fetchAllPages('/intake/verifications', { limit: 500 }, signal)

export const verifyReport = (id: string, confirmed: boolean, note: string | null, photos: string[]): Promise<Report> =>
  request('POST', `/intake/reports/${id}/verification`, { json: { confirmed, note, photos } })

/** What a case search asks for; each field given narrows it. */
export interface CaseFilters {
  number?: string
  statuses?: CaseStatus[]
  category?: string
  district?: string
  department?: string
  source?: ReportSource
  filedFrom?: string
  filedTo?: string
}

export function searchCases(filters: CaseFilters, after: string | null, signal?: AbortSignal): Promise<CasePage> {
  const query: Query = {
    number: filters.number || undefined,
    category: filters.category || undefined,
    district: filters.district || undefined,
    department: filters.department || undefined,
    source: filters.source || undefined,
    filed_from: filters.filedFrom || undefined,
    filed_to: filters.filedTo || undefined,
    after: after ?? undefined,
    limit: 50,
  }
  // `status` repeats, one per status wanted: URLSearchParams takes a name many times.
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, String(value))
  for (const status of filters.statuses ?? []) params.append('status', status)
  return getJson(`/intake/cases?${params.toString()}`, undefined, signal)
}

export const fetchCase = (id: string, signal?: AbortSignal): Promise<CaseRecord> => getJson(`/intake/cases/${id}`, undefined, signal)

export const fetchTimeline = (id: string, signal?: AbortSignal): Promise<TimelineEntry[]> =>
  getJson(`/intake/cases/${id}/timeline`, undefined, signal)
