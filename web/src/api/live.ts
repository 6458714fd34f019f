// A live feed of Server-Sent Events read with a streamed fetch, not EventSource.
//
// Why: EventSource cannot send an Authorization header, and the console has no cookie session
// to fall back on — by choice: a bearer token the page holds cannot be sent by another site's
// page (no CSRF surface), and the console uses exactly the API an integrator uses. A fetch
// with the bearer header and a ReadableStream reads the same text/event-stream framing
// (sse.ts); this module adds what EventSource would have done: reconnect with backoff, and it
// takes a fresh token at each reconnect (a stream outlives the 15-minute access token it
// started with; the server checks the token once, when the stream starts).

import { ApiError, currentCredentials, errorOf, withQuery, type Query } from './http'
import { SseParser, type StreamEvent } from './sse'

export type FeedState = 'connecting' | 'open' | 'retrying' | 'ended'

export interface FeedOptions {
  path: string
  query?: Query
  onEvent(event: StreamEvent): void
  onState?(state: FeedState, detail?: string): void
  /** The first wait after a broken stream; doubled per failure up to `maxDelayMs`. */
  firstDelayMs?: number
  maxDelayMs?: number
}

export interface Feed {
  close(): void
}

/** A server error, a timeout or too many requests passes; any other refusal stays. */
const mayHeal = (status: number): boolean => status === 0 || status === 408 || status === 429 || status >= 500

/** 2.5 times the server's keep-alive interval (15 s). */
const SILENCE_MS = 40_000

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true })
  })

/** Opens the feed at once and keeps it open until `close()`, or until the session has ended
 * (a 401 that a refresh cannot mend). */
export function openFeed(options: FeedOptions): Feed {
  const stop = new AbortController()
  const first = options.firstDelayMs ?? 1000
  const max = options.maxDelayMs ?? 30000
  const state = (value: FeedState, detail?: string): void => options.onState?.(value, detail)

  async function run(): Promise<void> {
    let failures = 0
    while (!stop.signal.aborted) {
      state(failures === 0 ? 'connecting' : 'retrying')
      let detail: string | undefined
      try {
        const outcome = await readOnce()
        if (outcome === 'session-ended') {
          state('ended', 'session ended')
          return
        }
        if (outcome === 'read') failures = 0
      } catch (error) {
        if (stop.signal.aborted) return
        detail = error instanceof Error ? error.message : String(error)
        if (error instanceof ApiError && !mayHeal(error.status)) {
          // Refused for good (403: not this user's figures; 422: a bad query): asking again
          // would be refused again.
          state('ended', detail)
          return
        }
      }
      if (stop.signal.aborted) return
      failures++
      state('retrying', detail)
      // Jitter, so that the screens of a whole command center do not reconnect in step.
      const delay = Math.min(max, first * 2 ** Math.min(failures - 1, 10)) * (0.75 + Math.random() * 0.5)
      await sleep(delay, stop.signal)
    }
  }

  /** One connection: 'read' once events arrived (a later break starts the backoff afresh). */
  async function readOnce(): Promise<'read' | 'nothing' | 'session-ended'> {
    // A connection dropped without a word (a laptop asleep, a NAT forgetting it) would leave the
    // feed 'open' on stale figures: the server sends a comment every 15 s when it has nothing
    // to say, so a connection silent for longer than SILENCE_MS is given up and made again.
    const connection = new AbortController()
    const onStop = (): void => connection.abort()
    stop.signal.addEventListener('abort', onStop, { once: true })
    let watchdog: ReturnType<typeof setTimeout> | undefined
    const heard = (): void => {
      clearTimeout(watchdog)
      watchdog = setTimeout(() => connection.abort(), SILENCE_MS)
    }
    try {
      heard()
      return await readConnection(connection.signal, heard)
    } catch (error) {
      if (connection.signal.aborted && !stop.signal.aborted) throw new ApiError(0, 'silent', 'the feed went silent')
      throw error
    } finally {
      clearTimeout(watchdog)
      stop.signal.removeEventListener('abort', onStop)
    }
  }

  async function readConnection(
    signal: AbortSignal,
    heard: () => void,
  ): Promise<'read' | 'nothing' | 'session-ended'> {
    const credentials = currentCredentials()
    const connect = (): Promise<Response> => {
      const token = credentials.token()
      const headers: Record<string, string> = { Accept: 'text/event-stream' }
      if (token) headers.Authorization = `Bearer ${token}`
      return fetch(withQuery(options.path, options.query), {
        headers,
        signal,
        credentials: 'omit',
        cache: 'no-store',
      })
    }
    let response = await connect()
    if (response.status === 401) {
      await response.body?.cancel()
      const renewal = await credentials.renew()
      if (renewal === 'ended') return 'session-ended'
      if (renewal === 'unavailable') throw new ApiError(0, 'unreachable', 'the server could not renew the session')
      response = await connect()
    }
    if (!response.ok || !response.body) throw await errorOf(response)
    state('open')
    const parser = new SseParser()
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    let read = false
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return read ? 'read' : 'nothing'
        heard()
        for (const event of parser.feed(value)) {
          read = true
          options.onEvent(event)
        }
      }
    } finally {
      reader.releaseLock()
    }
  }

  void run()
  return { close: () => stop.abort() }
}
