// Photos (shared/web/photos.py, under every service's prefix): uploaded by content hash, read
// back with the bearer token (an <img src> cannot send it) as blobs the page shows by blob: URL.

import { getBlob, request } from './http'
import type { StoredPhoto } from './types'

export type PhotoService = 'intake' | 'handling' | 'closure'

export const PHOTO_TYPES = 'image/jpeg,image/png,image/webp'

export function uploadPhotos(service: PhotoService, files: File[]): Promise<StoredPhoto[]> {
  const body = new FormData()
  for (const file of files) body.append('files', file, file.name)
  return request('POST', `/${service}/photos`, { multipart: body })
}

// A photo never changes (its name is its hash): one blob: URL serves every <img> that shows it.
// Each URL holds the photo's bytes in memory until it is revoked, so a dispatcher going through
// cases all day would keep every photo she ever saw. A URL is kept while a component shows it
// (revoked, it would break that <img> and its link to the full size), and so are up to IDLE_KEPT
// more that nobody shows, the one shown longest ago revoked first: a case just left is often
// opened again, this morning's rarely.
const IDLE_KEPT = 60

interface Cached {
  url: Promise<string>
  holders: number
}

const cache = new Map<string, Cached>()
// The digests nobody shows, the longest idle first (a Set keeps the order of insertion).
const idle = new Set<string>()

/** A photo held for showing: its blob: URL, good until `release()`. */
export interface HeldPhoto {
  url: Promise<string>
  release(): void
}

/** The photo `digest` for an <img>, fetched once while it stays cached; release it when the
 * <img> goes. */
export function holdPhoto(digest: string): HeldPhoto {
  const held = cache.get(digest) ?? fetchPhoto(digest)
  held.holders++
  idle.delete(digest)
  let released = false
  return {
    url: held.url,
    release() {
      if (released) return
      released = true
      if (--held.holders === 0 && cache.get(digest) === held) {
        idle.add(digest)
        evictIdle()
      }
    },
  }
}

function fetchPhoto(digest: string): Cached {
  const fetched: Cached = {
    url: getBlob(`/intake/photos/${digest}`, 'image/*').then((blob) => URL.createObjectURL(blob)),
    holders: 0,
  }
  // A failed fetch is not kept: the next to show the photo tries again.
  fetched.url.catch(() => {
    if (cache.get(digest) !== fetched) return
    cache.delete(digest)
    idle.delete(digest)
  })
  cache.set(digest, fetched)
  return fetched
}

function evictIdle(): void {
  for (const digest of idle) {
    if (idle.size <= IDLE_KEPT) return
    idle.delete(digest)
    const url = cache.get(digest)?.url
    cache.delete(digest)
    url?.then((shown) => URL.revokeObjectURL(shown), () => undefined)
  }
}
