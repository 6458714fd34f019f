// The handling service (handling/api.py): a department's inbox and what it does with a case:
// sign (签收), return (回退), ask for time (延期), report back with photos (处置反馈).

import { getJson, request } from './http'
import type { Task } from './types'

/** The department's cases still to act on, nearest deadline first. */
export const fetchInbox = (signal?: AbortSignal): Promise<Task[]> => getJson('/handling/inbox', { limit: 500 }, signal)

export const fetchTask = (id: string, signal?: AbortSignal): Promise<Task> => getJson(`/handling/cases/${id}`, undefined, signal)

export const acceptTask = (id: string): Promise<Task> => request('POST', `/handling/cases/${id}/accept`)

export const returnTask = (id: string, reason: string): Promise<Task> =>
  request('POST', `/handling/cases/${id}/return`, { json: { reason } })

/** `requestedDeadline` an instant with its offset (ISO 8601). */
export const requestExtension = (id: string, requestedDeadline: string, reason: string): Promise<Task> =>
  request('POST', `/handling/cases/${id}/extension`, { json: { requested_deadline: requestedDeadline, reason } })

/** The route takes the photos themselves (multipart), not the digests of photos uploaded before:
 * the same files are sent again, and the store keeps each once (by its content hash). */
export function reportHandled(id: string, result: string, photos: File[]): Promise<Task> {
  const body = new FormData()
  body.append('result', result)
  for (const photo of photos) body.append('photos', photo, photo.name)
  return request('POST', `/handling/cases/${id}/report`, { multipart: body })
}
