// The handling service (handling/api.py): a department's inbox and what it does with a case:
// sign (签收), return (回退), ask for time (延期), report back with photos (处置反馈).

import { getJson, request } from './http'
import { fetchAllPages, type WorkList } from './pages'
import type { Task } from './types'

/** The department's cases still to act on, nearest deadline first, every page of them. */
export const fetchInbox = (signal?: AbortSignal): Promise<WorkList<Task>> => fetchAllPages('/handling/inbox', { limit: 500 }, signal)

export const fetchTask = (id: string, signal?: AbortSignal): Promise<Task> => getJson(`/handling/cases/${id}`, undefined, signal)

export const acceptTask = (id: string): Promise<Task> => request('POST', `/handling/cases/${id}/accept`)

export const returnTask = (id: string, reason: string): Promise<Task> =>
  request('POST', `/handling/cases/${id}/return`, { json: { reason } })

/** `requestedDeadline` an instant with its offset (ISO 8601). */
export const requestExtension = (id: string, requestedDeadline: string, reason: string): Promise<Task> =>
  request('POST', `/handling/cases/${id}/extension`, { json: { requested_deadline: requestedDeadline, reason } })

/** `photos`: the digests of the photos uploaded already (to show them while the form is filled
 * in), named rather than sent again; the route takes a `photo` field per photo. */
export function reportHandled(id: string, result: string, photos: string[]): Promise<Task> {
  const body = new FormData()
  body.append('result', result)
  for (const digest of photos) body.append('photo', digest)
  return request('POST', `/handling/cases/${id}/report`, { multipart: body })
}
