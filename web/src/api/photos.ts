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

// A photo never changes (its name is its hash): each is fetched once per page load.
const urls = new Map<string, Promise<string>>()

/** A blob: URL of the photo `digest`, for an <img>. */
export function photoUrl(digest: string): Promise<string> {
  let url = urls.get(digest)
  if (!url) {
    url = getBlob(`/intake/photos/${digest}`, 'image/*').then((blob) => URL.createObjectURL(blob))
    url.catch(() => urls.delete(digest))
    urls.set(digest, url)
  }
  return url
}
