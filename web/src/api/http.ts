// The one way the console talks to the services: relative URLs (same origin), a bearer token
// on every call, one refresh and retry on a 401, and every refusal as an `ApiError` carrying the
// server's own `message`.
//
// There is no cookie session: the console holds a bearer token and sends it like any integrator
// does, so a page of another site cannot make the browser act for the user (no CSRF surface),
// and anything the console shows, an integrator can fetch the same way.

import type { ErrorBody } from './types'

/** A refusal or failure: `status` 0 when the server could not be reached at all. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

/** Where calls get their bearer token, and how they get a new one after a 401. The session
 * module plugs itself in here (see session.ts), so this module does not import it. */
export interface Credentials {
  token(): string | null
  renew(): Promise<Renewal>
}

/** What a refresh came to: 'unavailable' (the server could not answer) is worth another try. */
export type Renewal = 'renewed' | 'ended' | 'unavailable'

let credentials: Credentials = { token: () => null, renew: async () => 'ended' }

export function useCredentials(provider: Credentials): void {
  credentials = provider
}

export function currentCredentials(): Credentials {
  return credentials
}

export type Query = Record<string, string | number | boolean | null | undefined>

export function withQuery(path: string, query?: Query): string {
  if (!query) return path
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) params.set(name, String(value))
  }
  const text = params.toString()
  return text ? `${path}?${text}` : path
}

export interface RequestOptions {
  query?: Query
  /** An `application/x-www-form-urlencoded` body (the OAuth2 endpoints take forms). */
  form?: Record<string, string>
  json?: unknown
  /** A `multipart/form-data` body (photos with a handling report); the browser sets its boundary. */
  multipart?: FormData
  /** What the answer is wanted as (JSON by default). */
  accept?: string
  /** Send the bearer token (default); the log-in calls do not. */
  auth?: boolean
  signal?: AbortSignal
}

/** One call, answered: the bearer token sent, renewed and the call sent again once after a 401,
 * every refusal an `ApiError`. The body is the caller's to read. */
export async function send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  const auth = options.auth ?? true
  const attempt = async (): Promise<Response> => {
    const headers: Record<string, string> = { Accept: options.accept ?? 'application/json' }
    let body: BodyInit | undefined
    if (options.form) body = new URLSearchParams(options.form)
    else if (options.multipart) body = options.multipart
    else if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json'
      body = JSON.stringify(options.json)
    }
    const token = auth ? credentials.token() : null
    if (token) headers.Authorization = `Bearer ${token}`
    try {
      return await fetch(withQuery(path, options.query), {
        method,
        headers,
        body,
        signal: options.signal,
        credentials: 'omit',
        cache: 'no-store',
      })
    } catch (error) {
      if (error instanceof DOMException && error.name === 'AbortError') throw error
      throw new ApiError(0, 'unreachable', error instanceof Error ? error.message : String(error))
    }
  }
  const sent = auth ? credentials.token() : null
  let response = await attempt()
  // A token replaced while this call was out needs no refresh of its own, just the new token.
  if (response.status === 401 && auth && (credentials.token() !== sent || (await credentials.renew()) === 'renewed'))
    response = await attempt()
  if (!response.ok) throw await errorOf(response)
  return response
}

/** One call; resolves with the JSON answer (undefined for 204), rejects with an `ApiError`. */
export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const response = await send(method, path, options)
  if (response.status === 204) return undefined as T
  return (await response.json()) as T
}

/** A file the API answers (a photo, a workbook), fetched with the bearer token a plain link
 * cannot carry. */
export async function getBlob(path: string, accept: string, signal?: AbortSignal): Promise<Blob> {
  return (await send('GET', path, { accept, signal })).blob()
}

/** The `ApiError` of a refused answer, with the server's message when it sent its error shape. */
export async function errorOf(response: Response): Promise<ApiError> {
  let body: Partial<ErrorBody> | null = null
  try {
    body = (await response.json()) as Partial<ErrorBody>
  } catch {
    // Not JSON: a proxy's page, say. The status line is all there is.
  }
  const message = typeof body?.message === 'string' ? body.message : response.statusText || `HTTP ${response.status}`
  return new ApiError(response.status, body?.code ?? `http_${response.status}`, message, body?.details)
}

export const getJson = <T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> =>
  request<T>('GET', path, { query, signal })
