// The city's names for the ids the APIs answer: categories (/city/categories), districts and
// streets (/city/scopes), departments (/dispatch/departments). Fetched once per page load,
// shared by every view; an id the city does not name shows as itself.

import { computed, shallowRef } from 'vue'
import { useI18n } from 'vue-i18n'

import { fetchCategories, fetchScopes } from './api/city'
import { fetchDepartments } from './api/dispatch'
import type { Category, Department, ScopeTree } from './api/types'

const categories = shallowRef<Category[]>([])
const scopes = shallowRef<ScopeTree | null>(null)
const departments = shallowRef<Department[]>([])
let loading: Promise<void> | null = null

function load(): Promise<void> {
  loading ??= Promise.all([fetchCategories(), fetchScopes(), fetchDepartments()])
    .then(([c, s, d]) => {
      categories.value = c
      scopes.value = s
      departments.value = d
    })
    .catch((error: unknown) => {
      loading = null
      throw error
    })
  return loading
}

const categoryByCode = computed(() => new Map(categories.value.map((c) => [c.code, c])))
const scopeNames = computed(() => {
  const names = new Map<string, string>()
  for (const district of scopes.value?.districts ?? []) {
    names.set(district.id, district.name)
    for (const street of district.streets) {
      names.set(street.id, street.name)
      for (const community of street.communities) names.set(community.id, community.name)
    }
  }
  return names
})
const departmentNames = computed(() => new Map(departments.value.map((d) => [d.id, d.name])))

export function useReference() {
  const { locale } = useI18n()
  const english = computed(() => locale.value === 'en')
  return {
    /** Resolves when the names are in (rejects with the failure, tried again on the next call). */
    ready: load,
    categories,
    scopes,
    departments,
    category: (code: string): Category | undefined => categoryByCode.value.get(code),
    categoryName(code: string): string {
      const category = categoryByCode.value.get(code)
      if (!category) return code
      return english.value ? category.name_en : category.name
    },
    majorName(category: Category): string {
      return english.value ? category.major_name_en : category.major_name
    },
    scopeName: (id: string | null | undefined): string => (id ? (scopeNames.value.get(id) ?? id) : '—'),
    departmentName: (id: string | null | undefined): string => (id ? (departmentNames.value.get(id) ?? id) : '—'),
  }
}
