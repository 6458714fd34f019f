// Narrowing a work list on the page: a few characters of a number, category, place, department
// or description, and a district. The lists are read to their end (api/pages.ts), so the filter
// finds a row wherever it stands in a long queue, without asking the server again.

import { ref } from 'vue'

import { useReference } from './reference'

export interface QueueFilterValue {
  text: string
  district: string
}

export interface Filterable {
  case_number?: string | null
  category_code?: string
  street_id?: string
  district_id?: string
  department_id?: string | null
  description?: string
}

export function useQueueFilter() {
  const names = useReference()
  const filter = ref<QueueFilterValue>({ text: '', district: '' })

  function apply<R extends Filterable>(rows: readonly R[]): R[] {
    const { text, district } = filter.value
    const wanted = text.trim().toLowerCase()
    return rows.filter((row) => {
      // A list without districts (an inspector's checks, all in their own cells) is not narrowed by one.
      if (district && row.district_id !== undefined && row.district_id !== district) return false
      if (!wanted) return true
      const haystack = [
        row.case_number,
        row.category_code,
        row.category_code && names.categoryName(row.category_code),
        row.street_id && names.scopeName(row.street_id),
        row.district_id && names.scopeName(row.district_id),
        row.department_id && names.departmentName(row.department_id),
        row.description,
      ]
      return haystack.some((value) => typeof value === 'string' && value.toLowerCase().includes(wanted))
    })
  }
  return { filter, apply }
}
