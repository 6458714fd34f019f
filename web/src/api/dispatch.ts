// The dispatch service (dispatch/api.py): the coordination queue (权属不清) and returned cases,
// dispatching (派遣), and the shift lead's extensions (延期), suspensions (挂账) and supervision
// notices (督办).

import { getJson, request } from './http'
import { fetchAllPages, type WorkList } from './pages'
import type { Department, DispatchCase } from './types'

/** Cases waiting for a dispatcher, oldest first, every page of them. */
export const fetchQueue = (status: 'coordination' | 'returned', signal?: AbortSignal): Promise<WorkList<DispatchCase>> =>
  fetchAllPages('/dispatch/queue', { status, limit: 500 }, signal)

let departments: Promise<Department[]> | null = null

/** The departments, in the city's order: fetched once per page load. */
export function fetchDepartments(): Promise<Department[]> {
  if (!departments) {
    departments = getJson<Department[]>('/dispatch/departments')
    departments.catch(() => (departments = null))
  }
  return departments
}

export const fetchDispatchCase = (id: string, signal?: AbortSignal): Promise<DispatchCase> =>
  getJson(`/dispatch/cases/${id}`, undefined, signal)

export const dispatchCase = (id: string, departmentId: string): Promise<DispatchCase> =>
  request('POST', `/dispatch/cases/${id}/dispatch`, { json: { department_id: departmentId } })

/** Extension requests waiting for the shift lead, earliest deadline first, every page of them. */
export const fetchExtensions = (signal?: AbortSignal): Promise<WorkList<DispatchCase>> =>
  fetchAllPages('/dispatch/extensions', { limit: 500 }, signal)

export const approveExtension = (id: string): Promise<DispatchCase> => request('POST', `/dispatch/cases/${id}/extension/approve`)

export const denyExtension = (id: string, reason: string): Promise<DispatchCase> =>
  request('POST', `/dispatch/cases/${id}/extension/deny`, { json: { reason } })

export const suspendCase = (id: string, reason: string): Promise<DispatchCase> =>
  request('POST', `/dispatch/cases/${id}/suspend`, { json: { reason } })

export const resumeCase = (id: string): Promise<DispatchCase> => request('POST', `/dispatch/cases/${id}/resume`)

export const superviseCase = (id: string, note: string): Promise<DispatchCase> =>
  request('POST', `/dispatch/cases/${id}/supervise`, { json: { note } })
