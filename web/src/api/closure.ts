// The closure service (closure/api.py): an inspector's check tasks (核查) and the shift lead's
// cancellation (作废).

import { request } from './http'
import { fetchAllPages, type WorkList } from './pages'
import type { ClosureCase } from './types'

/** The calling inspector's open check tasks, nearest deadline first, every page of them. */
export const fetchChecks = (signal?: AbortSignal): Promise<WorkList<ClosureCase>> =>
  fetchAllPages('/closure/checks', { limit: 500 }, signal)

export const checkCase = (id: string, passed: boolean, note: string | null, photos: string[]): Promise<ClosureCase> =>
  request('POST', `/closure/cases/${id}/check`, { json: { passed, note, photos } })

export const cancelCase = (id: string, reason: string): Promise<ClosureCase> =>
  request('POST', `/closure/cases/${id}/cancel`, { json: { reason } })
