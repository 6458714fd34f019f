// A workbench's queues: the lists it works from (each read to its end, the reference names with
// them), one shown at a time as a tab with its count, narrowed by the filter, one row picked for
// the detail beside the list. The same on every workbench, whatever the rows are: reports, cases
// to dispatch, tasks, check tasks.

import { computed, onMounted, ref, watch, type ComputedRef, type Ref } from 'vue'

import type { WorkList } from './api/pages'
import { useQueueFilter, type Filterable, type QueueFilterValue } from './queueFilter'
import { useReference } from './reference'
import { useLoad } from './useLoad'

type Row = { id: string } & Filterable

/** How each queue is fetched, by its name; the name is also its tab's key. */
export type QueueLoaders<L extends Record<string, Row>> = {
  [K in keyof L]: (signal: AbortSignal) => Promise<WorkList<L[K]>>
}

export interface Queue<L extends Record<string, Row>> {
  /** The queue shown. */
  tab: Ref<keyof L & string>
  /** The queues as tabs, each with its count (`500+` when it goes on beyond what was read). */
  tabs: ComputedRef<Array<{ key: keyof L & string; label: string; count: number | string | null }>>
  filter: Ref<QueueFilterValue>
  /** The rows of queue `key` that pass the filter. */
  shown<K extends keyof L>(key: K): L[K][]
  /** Every row read of queue `key`, filtered or not. */
  all<K extends keyof L>(key: K): L[K][]
  /** The id of the row picked, if any. */
  selected: Ref<string | null>
  /** The row picked in the queue shown. */
  current: ComputedRef<L[keyof L] | null>
  /** The row picked when the queue shown is `key` (typed as that queue's rows). */
  picked<K extends keyof L>(key: K): ComputedRef<L[K] | null>
  loading: Ref<boolean>
  error: Ref<unknown>
  /** Read every queue again (a refresh, the half-minute tick, after an action). */
  reload: () => Promise<void>
}

/** The queues `loaders` fetch, the first tab `first`, each tab's label from `label`. */
export function useQueue<L extends Record<string, Row>>(
  loaders: QueueLoaders<L>,
  first: keyof L & string,
  label: (key: keyof L & string) => string,
): Queue<L> {
  const names = useReference()
  const { filter, apply } = useQueueFilter()
  const keys = Object.keys(loaders) as Array<keyof L & string>
  const tab = ref(first) as Ref<keyof L & string>
  const selected = ref<string | null>(null)

  const lists = useLoad(async (signal) => {
    const [read] = await Promise.all([
      Promise.all(keys.map(async (key) => [key, await loaders[key](signal)] as const)),
      names.ready(),
    ])
    return Object.fromEntries(read) as { [K in keyof L]: WorkList<L[K]> }
  }, null)
  onMounted(lists.reload)

  const all = <K extends keyof L>(key: K): L[K][] => lists.data.value?.[key].rows ?? []
  const shown = <K extends keyof L>(key: K): L[K][] => apply(all(key))
  const tabs = computed(() =>
    keys.map((key) => {
      const list = lists.data.value?.[key]
      return { key, label: label(key), count: list ? (list.more ? `${list.rows.length}+` : list.rows.length) : null }
    }),
  )
  const find = <K extends keyof L>(key: K): L[K] | null => all(key).find((row) => row.id === selected.value) ?? null
  const current = computed<L[keyof L] | null>(() => find(tab.value))
  const picked = <K extends keyof L>(key: K): ComputedRef<L[K] | null> => computed(() => (tab.value === key ? find(key) : null))
  // A row picked in one queue means nothing in another.
  watch(tab, () => (selected.value = null))

  return {
    tab,
    tabs,
    filter,
    shown,
    all,
    selected,
    current,
    picked,
    loading: lists.loading,
    error: lists.error,
    reload: lists.reload,
  }
}
