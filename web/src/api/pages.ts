// Work lists the services answer in pages (shared/web/paging.py): each answer is an array, and
// while more rows follow it names the next page in an RFC 8288 header, `Link: <url>; rel="next"`.
// A workbench reads a list to its end, so that its count, its filter and its order cover the
// whole queue, not the first page of it.

import { send, withQuery, type Query } from './http'

/** A work list as read: its rows, and whether it goes on beyond them (more than the console
 * reads at once, or a search's further pages). */
export interface WorkList<T> {
  rows: T[]
  more: boolean
}

/** Rows a workbench reads of one list at most: ten pages of 500. A shift's queue is far below
 * it; a backlog beyond it shows its oldest (or most urgent) rows and says that more follow. */
export const MOST_ROWS = 5000

/** The target of the `rel="next"` link of a `Link` header, or null. Link values are separated by
 * commas, which may also stand inside a target, so each value is read from its `<…>`. */
export function nextLink(header: string | null): string | null {
  if (!header) return null
  for (const [, target, params] of header.matchAll(/<([^>]*)>([^<]*)/g)) {
    const rel = /(?:^|;)\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params ?? '')
    const relations = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/)
    if (relations.includes('next')) return target ?? null
  }
  return null
}

/** The path and query of a next link, on this origin. The server writes the address as it
 * received the request, which behind a proxy (Vite's dev server, an ingress) can name another
 * host; the console calls its own origin only (its Content Security Policy allows no other). */
function onThisOrigin(target: string, answeredBy: string): string {
  const url = new URL(target, answeredBy || window.location.href)
  return `${url.pathname}${url.search}`
}

/** Every row of the list at `path`, page after page, up to `most` rows. */
export async function fetchAllPages<T>(path: string, query: Query, signal?: AbortSignal, most = MOST_ROWS): Promise<WorkList<T>> {
  const rows: T[] = []
  let url: string | null = withQuery(path, query)
  while (url !== null) {
    const response = await send('GET', url, { signal })
    rows.push(...((await response.json()) as T[]))
    const next = nextLink(response.headers.get('Link'))
    url = next === null ? null : onThisOrigin(next, response.url)
    if (url !== null && rows.length >= most) return { rows: rows.slice(0, most), more: true }
  }
  return { rows, more: false }
}
