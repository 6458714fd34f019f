// The city's reference data (services/runtime/city.py): the grid as GeoJSON, for a map
// without tiles; the districts, streets and communities; the case categories.

import { getJson } from './http'
import type { Category, MapLevel, ScopeFeatureCollection, ScopeTree } from './types'

const geometries = new Map<MapLevel, Promise<ScopeFeatureCollection>>()

/** A level's polygons, fetched once per page load (the city changes only when its services
 * restart); a failed fetch is forgotten so the next call tries again. */
export function fetchGeometry(level: MapLevel): Promise<ScopeFeatureCollection> {
  let pending = geometries.get(level)
  if (!pending) {
    pending = getJson<ScopeFeatureCollection>(`/city/geometry/${level}`)
    pending.catch(() => geometries.delete(level))
    geometries.set(level, pending)
  }
  return pending
}

function once<T>(path: string): () => Promise<T> {
  let pending: Promise<T> | null = null
  return () => {
    if (!pending) {
      pending = getJson<T>(path)
      pending.catch(() => (pending = null))
    }
    return pending
  }
}

/** The districts, their streets and communities, with names; once per page load. */
export const fetchScopes = once<ScopeTree>('/city/scopes')

/** The case categories and their time limits; once per page load. */
export const fetchCategories = once<Category[]>('/city/categories')
