// A case search as the page's address keeps it (one query parameter per field) and as the API
// takes it (GET /intake/cases).

import type { LocationQuery } from 'vue-router'

import type { CaseFilters } from '@/api/intake'
import type { CaseStatus, ReportSource } from '@/api/types'

export interface SearchForm {
  number: string
  /** One status, or `open`: every status but closed and cancelled. */
  status: '' | 'open' | CaseStatus
  category: string
  district: string
  department: string
  source: '' | ReportSource
  from: string
  to: string
}

export const STATUSES: CaseStatus[] = [
  'filed',
  'coordination',
  'dispatched',
  'accepted',
  'returned',
  'suspended',
  'handled',
  'checking',
  'rework',
  'closed',
  'cancelled',
]
const OPEN = STATUSES.filter((status) => status !== 'closed' && status !== 'cancelled')
const FIELDS = ['number', 'status', 'category', 'district', 'department', 'source', 'from', 'to'] as const

export function formOf(query: LocationQuery): SearchForm {
  const read = (name: string): string => (typeof query[name] === 'string' ? (query[name] as string) : '')
  return {
    number: read('number'),
    status: read('status') as SearchForm['status'],
    category: read('category'),
    district: read('district'),
    department: read('department'),
    source: read('source') as SearchForm['source'],
    from: read('from'),
    to: read('to'),
  }
}

/** The fields given, as the page's query. */
export function queryOf(form: SearchForm): Record<string, string> {
  return Object.fromEntries(FIELDS.filter((name) => form[name]).map((name) => [name, form[name]]))
}

export function filtersOf(form: SearchForm): CaseFilters {
  return {
    number: form.number,
    statuses: form.status === 'open' ? OPEN : form.status ? [form.status] : [],
    category: form.category,
    district: form.district,
    department: form.department,
    source: form.source || undefined,
    filedFrom: form.from,
    filedTo: form.to,
  }
}
